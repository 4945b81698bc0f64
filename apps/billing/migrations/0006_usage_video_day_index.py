"""``video_day`` NOT NULL (0005 filled it in), and the usage report's covering index on it in place of
the one that served the join of entries to their videos."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_invitation_constraints"),
        ("billing", "0005_usage_video_day"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="usageentry",
            name="video_day",
            field=models.DateField(help_text="The day (TIME_ZONE) its video was created: the usage report's day"),
        ),
        migrations.RemoveIndex(model_name="usageentry", name="usage_gen_kind_cover"),
        migrations.AddIndex(
            model_name="usageentry",
            index=models.Index(
                fields=["organization", "video_day", "kind", "provider", "model", "user", "amount", "seconds"],
                name="usage_org_day_cover",
            ),
        ),
    ]
