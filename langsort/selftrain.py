"""Learning from the unlabelled archive itself (self-training, "noisy student").

A team has minutes of labelled speech per language but hours of unlabelled archive. Each
round, the current model (the teacher) labels the archive; the files it labels confidently
as one language, and the confident turns of the others (bilingual recordings among them),
balanced by language, become pseudo-labelled recordings; a new model (the student) trains on the
labelled corpus plus those, with perturbed copies and SpecAugment on both sides, and becomes
the next round's teacher. Pseudo-labelled recordings join the training side only
(`fit(train_only=...)`): validation, early stopping and the test figures stay on the
labelled recordings. The first round's teacher is the average of a few models trained on the
labelled corpus from successive seeds: which unseen voices one model gets right is its seed's
draw, and its mistakes would become the student's (bench/timeline.py). For the same reason the
final model is the mean of the last two rounds' students (`train.backbones.averaged`). A model
that does not learn is a draw too: a teacher that does not is left out of the average, and a
student that does not ends the rounds with its teacher as the model. What
each round buys is in metrics.json (`self_training`), bench/timeline.py and bench/accuracy.py
--scenario little.

MODEL_DIR/self-training/
  round-0/model/            the first teacher, trained on the labelled corpus alone (seed SEED)
  round-0/model-<k>/        the other first-round teachers, trained from seed SEED+k
  round-0/teachers.onnx     their average, which labels the archive in round 1
  round-<r>/labels/         the teacher's manifests of the archive
  round-<r>/pseudo/         the pseudo-labelled files, prepared like the labelled corpus
  round-<r>/model/          the student, the next round's teacher
  average/model/            the last AVERAGED_STUDENTS students averaged, when that many rounds ran
the last round's student, or the average, is copied into MODEL_DIR.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

from langsort import storage
from langsort.corpus import InputFile
from langsort.model import MODEL_FILE, read_model_info

PSEUDO_PREFIX = "_pseudo"  # pseudo-labelled paths: _pseudo/<language>/<path in the archive>
ROUNDS = 2
# `langsort run` (small, from scratch) keeps the one round bench/accuracy.py --scenario little measured for it
RUN_ROUNDS = 1
AVERAGED_STUDENTS = 2  # the final model averages the last rounds' students (see bench/timeline.py)
TEACHERS = 3
# `langsort run` trains small from scratch: there one teacher labelled the archive as well or better in half the
# time (bench/accuracy.py --scenario little --teachers N); the average helped train's 224 px (bench/timeline.py)
RUN_TEACHERS = 1
MIN_CONFIDENCE = 0.9
BALANCE_FLOOR = 0.7  # the least confidence of a segment that tops up a language the teacher is less often sure of
WORK_DIR = "self-training"
AVERAGED_TEACHERS = "teachers.onnx"  # in round-0/


@dataclass(frozen=True)
class SelfTraining:
    unlabelled: str  # the archive (a folder tree or an object-store URI)
    rounds: int = ROUNDS
    min_confidence: float = MIN_CONFIDENCE  # what a file, or a mixed file's turn, needs to be pseudo-labelled
    teachers: int = TEACHERS  # models averaged to label the archive in the first round


def pseudo_labelled(files, segments, labels: list[str], min_confidence: float, min_seconds: float,
                    floor: float = BALANCE_FLOOR):
    """What the teacher's manifests teach, as stretches (a DataFrame of path, language,
    start_s, end_s, whole), by its own call on each file. A file it calls one language at
    `min_confidence` or more, and not mixed, counts whole: its less certain stretches are
    where the student learns most. Every other file gives its segments at least `min_seconds`
    (a clip) long that it labels at `min_confidence`, so that code-switched recordings teach
    both their languages. Then, as Noisy Student balances its classes, each language with
    fewer seconds is topped up with its most confident remaining segments, down to `floor`,
    until it has as many as the most taught one: a teacher that is rarely sure of one language
    in some voice would otherwise teach the student that this voice speaks the other one
    (bench/timeline.py)."""
    import pandas as pd

    from langsort import manifest

    mixed = files.mixed.fillna(False).astype(bool)
    sure = files.status.eq(manifest.STATUS_OK) & files.language.isin(labels) & files.confidence.ge(min_confidence)
    whole_files = files.loc[sure & ~mixed].assign(start_s=0.0, end_s=files.duration_s, whole=True)
    probabilities = segments[[manifest.prob_column(label) for label in labels]].to_numpy()
    stretches = segments.assign(language=[labels[i] for i in probabilities.argmax(axis=1)],
                                confidence=probabilities.max(axis=1), whole=False)
    stretches = stretches[~stretches.path.isin(whole_files.path) & (stretches.end_s - stretches.start_s).ge(min_seconds)]
    confident = stretches.confidence.ge(min_confidence)
    columns = ["path", "language", "start_s", "end_s", "whole"]
    chosen = pd.concat([whole_files[columns], stretches.loc[confident, columns]])
    seconds = (chosen.end_s - chosen.start_s).groupby(chosen.language).sum().reindex(labels, fill_value=0.0)
    top_ups = []
    for language in labels:
        spare = stretches[~confident & stretches.language.eq(language) & stretches.confidence.ge(floor)]
        spare = spare.sort_values("confidence", ascending=False, kind="stable")
        top_ups.append(spare.loc[(spare.end_s - spare.start_s).cumsum().le(seconds.max() - seconds[language]), columns])
    return pd.concat([chosen, *top_ups]).sort_values(["path", "start_s"], ignore_index=True)


def pseudo_path(language: str, path: str) -> str:
    return f"{PSEUDO_PREFIX}/{language}/{path}"


def archive_path(pseudo: str) -> str:
    """The archive path a pseudo-labelled path was made from (pseudo_path's inverse)."""
    return pseudo.split("/", 2)[2]


def pseudo_recordings(chosen, input_root: str) -> list:
    """One prepare.ExtraRecording per (file, language) among the chosen stretches, labelled
    with the teacher's language: the whole file, or only those stretches."""
    from langsort.prepare import ExtraRecording

    return [ExtraRecording(InputFile(source=storage.join(input_root, path), path=pseudo_path(language, path),
                                     label=language),
                           windows=None if stretches.whole.all()
                           else tuple(zip(stretches.start_s.tolist(), stretches.end_s.tolist())))
            for (path, language), stretches in chosen.groupby(["path", "language"], sort=True)]


def fit_with_unlabelled(prepared_dir: str, model_dir: str, options, plan: SelfTraining, progress: bool = True,
                        echo=print):
    """Teacher on the labelled corpus, then `plan.rounds` rounds of pseudo-labelling the
    archive and training a student; MODEL_DIR ends up holding the last student, or the mean
    of the last AVERAGED_STUDENTS. Each step is skipped when its finished output is there, so
    an interrupted run continues."""
    import dataclasses

    import pandas as pd

    from langsort import export, label, manifest
    from langsort.prepare import PREPARED_META, PrepareConfig, prepare, read_meta
    from langsort.train import loop

    work = os.path.join(model_dir, WORK_DIR)
    meta = read_meta(prepared_dir)
    config = PrepareConfig.of_prepared(meta)

    def model_at(round_index: int) -> str:
        return os.path.join(work, f"round-{round_index}", "model")

    def trained(folder: str, train_only: tuple[str, ...] = (), seed: int = options.seed) -> dict:
        if not os.path.isfile(os.path.join(folder, loop.MODEL_JSON)):
            loop.fit(prepared_dir, folder, dataclasses.replace(options, seed=seed), progress=progress,
                     train_only=train_only)
        with open(os.path.join(folder, loop.METRICS)) as f:
            return json.load(f)

    def exported(folder: str) -> str:
        onnx = os.path.join(folder, MODEL_FILE)
        if not os.path.isfile(onnx):
            export.export(folder, onnx)
        return onnx

    def first_teacher() -> str:
        """The first round's: model_at(0) and plan.teachers - 1 more from the next seeds,
        averaged; one that does not learn (its seed's draw) is left out of the average."""
        if plan.teachers == 1:
            return exported(model_at(0))
        averaged = os.path.join(work, "round-0", AVERAGED_TEACHERS)
        if not os.path.isfile(averaged):
            learned = [model_at(0)]
            for k in range(1, plan.teachers):
                folder = os.path.join(work, "round-0", f"model-{k}")
                try:
                    trained(folder, seed=options.seed + k)
                    learned.append(folder)
                except loop.DidNotLearnError as failed:
                    echo(f"self-training: teacher {k + 1} of {plan.teachers} (seed {options.seed + k}) did not learn "
                         f"({failed.why}); left out of the average")
            export.average([exported(folder) for folder in learned], averaged)
        return averaged

    metrics, final, rounds = trained(model_at(0)), model_at(0), []
    for round_index in range(1, plan.rounds + 1):
        here = os.path.join(work, f"round-{round_index}")
        onnx = first_teacher() if round_index == 1 else exported(final)
        labels_dir, pseudo_dir = os.path.join(here, "labels"), os.path.join(here, "pseudo")
        label.label(plan.unlabelled, onnx, labels_dir, threshold=plan.min_confidence, progress=progress)
        files = pd.read_parquet(os.path.join(labels_dir, manifest.FILES_NAME))
        chosen = pseudo_labelled(files, pd.read_parquet(os.path.join(labels_dir, manifest.SEGMENTS_NAME)),
                                 meta["labels"], plan.min_confidence, config.shortest_clip_s)
        if chosen.empty:
            echo(f"self-training round {round_index}: no archive speech labelled at confidence >= "
                 f"{plan.min_confidence}; keeping the model of round {round_index - 1}")
            break
        if not os.path.isfile(os.path.join(pseudo_dir, PREPARED_META)):
            prepare(None, pseudo_dir, config, progress=progress, extra=pseudo_recordings(chosen, plan.unlabelled))
        try:
            student = trained(model_at(round_index), (pseudo_dir,))
        except loop.DidNotLearnError as failed:  # a draw of training from scratch on little data: the teacher stands
            echo(f"self-training round {round_index}: the student did not learn ({failed.why}; "
                 f"{model_at(round_index)}/metrics.json); keeping the model of round {round_index - 1}")
            break
        seconds = (chosen.end_s - chosen.start_s).groupby(chosen.language).sum().sort_index()
        rounds.append(dict(
            round=round_index, archive_files=len(files), pseudo_labelled=chosen.path.nunique(),
            seconds_by_language={language: round(float(s), 1) for language, s in seconds.items()},
            teachers=len(read_model_info(onnx).meta.details.get("averages", ())) or 1,  # an average, or one model
            teacher_validation=metrics["validation"]["clip"]["accuracy"],
            student_validation=student["validation"]["clip"]["accuracy"]))
        teacher_name = f"{rounds[-1]['teachers']} teachers averaged" if rounds[-1]["teachers"] > 1 else "the teacher"
        minutes = ", ".join(f"{language} {s / 60:.1f} min" for language, s in seconds.items())
        echo(f"self-training round {round_index}: {rounds[-1]['pseudo_labelled']} of {len(files)} archive files "
             f"pseudo-labelled ({minutes}) by {teacher_name}; validation clip accuracy "
             f"{rounds[-1]['teacher_validation']:.3f} -> {rounds[-1]['student_validation']:.3f}")
        metrics, final = student, model_at(round_index)

    averaged_rounds = [r["round"] for r in rounds][-AVERAGED_STUDENTS:]
    if len(averaged_rounds) > 1:
        final = os.path.join(work, "average", "model")
        if not os.path.isfile(os.path.join(final, loop.MODEL_JSON)):
            loop.average_models([model_at(r) for r in averaged_rounds], final, prepared_dir)
        with open(os.path.join(final, loop.METRICS)) as f:
            metrics = json.load(f)
        echo(f"self-training: the students of rounds {', '.join(map(str, averaged_rounds))} averaged; "
             f"validation clip accuracy {metrics['validation']['clip']['accuracy']:.3f}")

    metrics["self_training"] = rounds
    with open(os.path.join(final, loop.METRICS), "w") as f:
        json.dump(metrics, f, indent=2)
    for name in sorted(os.listdir(final)):  # model.json last: it is what makes MODEL_DIR a model
        if name != loop.MODEL_JSON and os.path.isfile(os.path.join(final, name)):
            shutil.copy(os.path.join(final, name), os.path.join(model_dir, name))
    shutil.copy(os.path.join(final, loop.MODEL_JSON), os.path.join(model_dir, loop.MODEL_JSON))
    return metrics
