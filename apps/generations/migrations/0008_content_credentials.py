from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0007_library"),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="content_credentials",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
