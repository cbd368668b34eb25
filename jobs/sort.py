"""ray job submit ... -- python jobs/sort.py ARGS: the same as `langsort sort ARGS`."""

from _entry import run

if __name__ == "__main__":
    run("sort")
