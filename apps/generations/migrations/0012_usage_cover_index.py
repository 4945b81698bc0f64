"""The usage report's covering index over the columns 0011 filled in (``gen_org_usage_cover``), in
place of ``gen_org_created_cover``; its own migration, as PostgreSQL builds no index in the
transaction that updated the rows."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0011_usage_columns"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="generation", name="gen_org_created_cover"),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(
                fields=[
                    "organization",
                    "created_at",
                    "state",
                    "provider",
                    "model",
                    "seconds",
                    "provider_cost",
                    "output_probed",
                    "output_flagged",
                    "user",
                ],
                name="gen_org_usage_cover",
            ),
        ),
    ]
