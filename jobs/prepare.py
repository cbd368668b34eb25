"""ray job submit ... -- python jobs/prepare.py ARGS: the same as `langsort prepare ARGS`."""

from _entry import run

if __name__ == "__main__":
    run("prepare")
