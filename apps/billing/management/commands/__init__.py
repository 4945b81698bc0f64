"""``manage.py refresh_prices``."""
