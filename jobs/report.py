"""ray job submit ... -- python jobs/report.py ARGS: the same as `langsort report ARGS`."""

from _entry import run

if __name__ == "__main__":
    run("report")
