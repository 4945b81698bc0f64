"""The usage report's read of what was spent, from a partial index of charges and refunds
(``usage_org_day_spent``), in place of ``usage_org_day_cover``, one index over every kind that
PostgreSQL passed over for a sequential scan. (What running jobs reserve is read through their
videos' state.) The budgets' two monthly sums get the amount in their indexes
(``usage_org_period_cover``, ``usage_org_user_period_cover``), so they are index-only scans too."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_usage_video_day_index"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="usageentry", name="usage_org_day_cover"),
        migrations.RemoveIndex(model_name="usageentry", name="usage_org_period"),
        migrations.RemoveIndex(model_name="usageentry", name="usage_org_user_period"),
        migrations.AddIndex(
            model_name="usageentry",
            index=models.Index(fields=["organization", "period", "amount"], name="usage_org_period_cover"),
        ),
        migrations.AddIndex(
            model_name="usageentry",
            index=models.Index(
                fields=["organization", "user", "period", "amount"], name="usage_org_user_period_cover"
            ),
        ),
        migrations.AddIndex(
            model_name="usageentry",
            index=models.Index(
                condition=models.Q(("kind__in", ("charge", "refund"))),
                fields=["organization", "video_day", "provider", "model", "user", "kind", "amount"],
                name="usage_org_day_spent",
            ),
        ),
    ]
