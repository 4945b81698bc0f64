FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_ENV=production
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# collectstatic needs settings to import; these throwaway values exist only during the build.
RUN SECRET_KEY=build FERNET_KEYS=$(python -c "from cryptography.fernet import Fernet;print(Fernet.generate_key().decode())") \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput
# the metrics volume of docker-compose.yml starts from this directory, owned by app
RUN useradd --create-home app && mkdir -p /var/lib/mediarouter/metrics && chown app /var/lib/mediarouter/metrics
USER app
EXPOSE 8000
CMD ["gunicorn", "mediarouter.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--worker-class", "gthread", "--threads", "4", "--keep-alive", "5", "--backlog", "2048", "--access-logfile", "-", "--logger-class", "mediarouter.logging.GunicornLogger"]
