"""`langsort review`: a local web app over the manifests, to listen to recordings, see their
language timelines and record what people decide (reviews.parquet).

app.py holds the routes (HTML pages and their JSON twins under /api/), catalog.py what the
pages show, media.py the audio and spectrogram bytes, guard.py who may ask, drawing.py the
timeline geometry that report.html shares, server.py the `langsort review` process.
"""
