"""ray job submit ... -- python jobs/export.py ARGS: the same as `langsort export ARGS`."""

from _entry import run

if __name__ == "__main__":
    run("export")
