"""UsageEntry now belongs to apps.billing (``billing.0001_initial``): state only, the table stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0002_provider_job_data"),
        ("billing", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="UsageEntry")],
        ),
    ]
