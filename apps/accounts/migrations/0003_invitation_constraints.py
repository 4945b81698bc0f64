from django.db import migrations, models


class Migration(migrations.Migration):
    """Apart from 0002: on PostgreSQL, a table whose rows were just updated (0002's data step)
    cannot be altered in the same transaction while its deferred foreign-key checks are pending."""

    dependencies = [
        ('accounts', '0002_invitation_kinds'),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='invitation',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('email', ''), ('kind', 'link')), models.Q(('kind', 'email'), ('max_uses', 1), models.Q(('email', ''), _negated=True)), _connector='OR'), name='invitation_kind_email'),
        ),
        migrations.AddConstraint(
            model_name='invitation',
            constraint=models.CheckConstraint(condition=models.Q(('max_uses__gte', 1), ('use_count__lte', models.F('max_uses'))), name='invitation_uses_within_limit'),
        ),
    ]
