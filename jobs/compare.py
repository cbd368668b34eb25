"""ray job submit ... -- python jobs/compare.py ARGS: the same as `langsort compare ARGS`."""

from _entry import run

if __name__ == "__main__":
    run("compare")
