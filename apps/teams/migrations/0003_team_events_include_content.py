from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("teams", "0002_team_time_zone")]

    operations = [
        migrations.AddField(
            model_name="team",
            name="events_include_content",
            field=models.BooleanField(
                default=False,
                help_text=(
                    "Put prompts and answers in the team's events (off: ids, counts and costs "
                    "only)."
                ),
            ),
        ),
    ]
