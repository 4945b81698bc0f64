"""Owners and admins can switch share links off for their organization (issue 19, item 4)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_invitation_constraints"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="sharing_enabled",
            field=models.BooleanField(
                default=True,
                db_default=True,
                help_text="Members may share videos by link with people outside the organization. Off: no link "
                "opens and none can be made; links neither expired nor revoked open again when it is back on.",
            ),
        ),
    ]
