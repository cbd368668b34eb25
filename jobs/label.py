"""ray job submit ... -- python jobs/label.py ARGS: the same as `langsort label ARGS`."""

from _entry import run

if __name__ == "__main__":
    run("label")
