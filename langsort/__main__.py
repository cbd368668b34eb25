from langsort.cli import app

app()
