"""The library: a favourite star and one free-text tag per video (issue 19, item 6)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0006_generation_callback_digest"),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="favourite",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="generation",
            name="tag",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(
                condition=models.Q(("tag", ""), _negated=True), fields=["organization", "tag"], name="gen_org_tag"
            ),
        ),
    ]
