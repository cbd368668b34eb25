"""ray job submit ... -- python jobs/annotate.py ARGS: the same as `langsort annotate ARGS`
(annotation files from manifests on s3:// or a shared filesystem, written on the job's driver)."""

from _entry import run

if __name__ == "__main__":
    run("annotate")
