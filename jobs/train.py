"""ray job submit ... -- python jobs/train.py ARGS: the same as `langsort train ARGS`."""

from _entry import run

if __name__ == "__main__":
    run("train")
