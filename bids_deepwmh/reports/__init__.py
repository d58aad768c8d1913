"""Visual reports: figures of one scan, the participant's HTML page and the study's page."""
