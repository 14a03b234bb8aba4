"""Aggregation: length-weighted GNSDR/GSIR/GSAR per (variant, step), failed clips, bad tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hourglass_sep.cli import main
from hourglass_sep.errors import UserError
from hourglass_sep.results.aggregate import SUMMARY_COLUMNS, aggregate, read_scores
from hourglass_sep.scoring.signals import SCORE_COLUMNS


def scores_table(variant, step, rows):
    """rows: (clip, samples, status, voice (sdr, sir, sar, nsdr), accompaniment (...))."""
    out = []
    for clip, samples, status, v, a in rows:
        r = {c: math.nan for c in SCORE_COLUMNS}
        r.update(
            variant=variant,
            step=step,
            clip=clip,
            singer=clip.split("_")[0],
            samples=samples,
            scorer="museval 0.4.1",
            seconds=0.1,
            status=status,
            mix_from="baseline",
        )
        for src, vals in (("voice", v), ("accompaniment", a)):
            for k, x in zip(("sdr", "sir", "sar", "nsdr"), vals):
                r[f"{src}_{k}"] = x
        out.append(r)
    return pd.DataFrame(out, columns=SCORE_COLUMNS)


def test_length_weighting_hand_computed():
    df = scores_table(
        "ours",
        15000,
        [
            ("a_1_01", 1000, "ok", (4, 10, 12, 2), (5, 9, 11, 1)),
            ("a_1_02", 3000, "ok", (8, 14, 16, 6), (9, 13, 15, 3)),
            # failed clips never enter the means, whatever their numbers
            (
                "b_1_01",
                5000,
                "silent reference (all zeros): voice",
                (math.nan,) * 4,
                (math.nan,) * 4,
            ),
            ("b_1_02", 7000, "missing from estimates", (99, 99, 99, 99), (99, 99, 99, 99)),
        ],
    )
    out = aggregate(df)
    assert list(out.columns) == SUMMARY_COLUMNS
    r = out.iloc[0]
    assert (r["variant"], r["step"], r["clips"], r["failed"], r["total_samples"]) == (
        "ours",
        15000,
        2,
        2,
        4000,
    )
    # (1000 * 2 + 3000 * 6) / 4000 = 5.0 ; (1000 * 10 + 3000 * 14) / 4000 = 13.0 ; ...
    assert r["voice_gnsdr"] == pytest.approx(5.0)
    assert r["voice_gsir"] == pytest.approx(13.0)
    assert r["voice_gsar"] == pytest.approx(15.0)
    assert r["voice_gsdr"] == pytest.approx(7.0)
    assert r["accompaniment_gnsdr"] == pytest.approx(2.5)
    assert r["accompaniment_gsir"] == pytest.approx(12.0)
    assert r["accompaniment_gsar"] == pytest.approx(14.0)
    assert r["accompaniment_gsdr"] == pytest.approx(8.0)
    assert r["scorer"] == "museval 0.4.1"
    # not the unweighted mean
    assert r["voice_gnsdr"] != pytest.approx(4.0)


def test_groups_by_variant_and_step_and_all_failed_is_nan():
    df = pd.concat(
        [
            scores_table("parks", 20000, [("a_1_01", 10, "ok", (1, 1, 1, 1), (2, 2, 2, 2))]),
            scores_table("parks", 15000, [("a_1_01", 10, "ok", (3, 3, 3, 3), (4, 4, 4, 4))]),
            scores_table(
                "broken", 1000, [("a_1_01", 10, "scorer error: boom", (1, 1, 1, 1), (1, 1, 1, 1))]
            ),
        ]
    )
    out = aggregate(df)
    assert out[["variant", "step"]].values.tolist() == [
        ["broken", 1000],
        ["parks", 15000],
        ["parks", 20000],
    ]
    assert out.set_index(["variant", "step"]).loc[("parks", 15000), "voice_gnsdr"] == 3
    b = out.iloc[0]
    assert (
        b["clips"] == 0
        and b["failed"] == 1
        and b["total_samples"] == 0
        and np.isnan(b["voice_gnsdr"])
    )
    # the reason travels with the summary (the report names it); none for runs without failures
    assert b["failure"] == "scorer error: boom"
    assert out.set_index(["variant", "step"]).loc[("parks", 15000), "failure"] == ""


def test_cli_several_files_and_bad_tables(tmp_path, capsys):
    s1 = tmp_path / "s1.tsv"
    s2 = tmp_path / "s2.tsv"
    scores_table("ours", 100, [("a_1_01", 1000, "ok", (4, 10, 12, 2), (5, 9, 11, 1))]).to_csv(
        s1, sep="\t", index=False
    )
    scores_table("ours", 100, [("a_1_02", 3000, "ok", (8, 14, 16, 6), (9, 13, 15, 3))]).to_csv(
        s2, sep="\t", index=False
    )
    out = tmp_path / "summary.tsv"
    assert main(["aggregate", "--scores", str(s1), str(s2), "-o", str(out)]) == 0
    sm = pd.read_csv(out, sep="\t")
    assert sm.loc[0, "clips"] == 2 and sm.loc[0, "voice_gnsdr"] == pytest.approx(5.0)

    def err(argv):
        capsys.readouterr()
        assert main(argv) == 2
        return capsys.readouterr().err

    e = err(["aggregate", "--scores", str(s1), str(s1), "-o", str(out)])
    assert "scored in more than one" in e
    cat = tmp_path / "catalogue.tsv"
    pd.DataFrame({"clip": ["a_1_01"], "singer": ["a"], "split": ["test"]}).to_csv(
        cat, sep="\t", index=False
    )
    e = err(["aggregate", "--scores", str(s1), str(cat), "-o", str(out)])
    assert "catalogue.tsv: not a scores table" in e and "hourglass-sep score" in e
    e = err(["aggregate", "--scores", str(tmp_path / "nope.tsv"), "-o", str(out)])
    assert "nope.tsv: scores table not found" in e
    junk = tmp_path / "junk.npz"
    np.savez(junk, x=np.zeros(3))
    e = err(["aggregate", "--scores", str(junk), "-o", str(out)])
    assert "junk.npz" in e and "Traceback" not in e


def test_library_rejects_non_scores_frame():
    with pytest.raises(UserError, match="not a scores table"):
        aggregate(pd.DataFrame({"clip": ["x"]}))
    with pytest.raises(UserError, match="no scores tables"):
        read_scores([])


def test_a_test_subset_keeps_the_report_fraction_of_a_reduced_test_set():
    """The report's 100 of 825 test clips: at 825 scored, 100; at the cpu preset's 60, the
    same fraction (7); never below 5 clips nor above the scored ones; without ``of``, n."""
    import pandas as pd

    from hourglass_sep.results.aggregate import subset_scores, subset_size

    assert subset_size(100, 825, 825) == 100
    assert subset_size(100, 60, 825) == 7
    assert subset_size(100, 16, 825) == 5 and subset_size(100, 3, 825) == 3
    assert subset_size(100, 60) == 60 and subset_size(10, 60) == 10
    clips = [f"s{i % 6}_1_{i:02d}" for i in range(60)]
    cat = pd.DataFrame({"clip": clips, "singer": [c.split("_")[0] for c in clips]})
    cat = cat.assign(song="1", split="test", samples=1000, sr=16000, path="")
    scores = pd.DataFrame({"clip": clips, "voice_nsdr": range(60)})
    out = subset_scores(scores, cat, 100, seed=0, of=825)
    assert len(out) == 7 and out["clip"].is_unique and set(out["clip"]) <= set(clips)
    assert out.equals(subset_scores(scores, cat, 100, seed=0, of=825))  # fixed by the seed


@pytest.mark.parametrize("of", ["0", "-5", "50"])
def test_subset_scores_refuses_an_of_smaller_than_the_subset(tmp_path, capsys, of):
    """--of is the size of the full test set the subset is drawn from: 0, a negative number
    or fewer clips than --clips is refused with a message naming the option."""
    scores = tmp_path / "s.tsv"
    scores_table("v", 1, [("amy_1_01", 100, "ok", (1, 2, 3, 4), (1, 2, 3, 4))]).to_csv(
        scores, sep="\t", index=False
    )
    args = ["subset-scores", "--scores", str(scores), "--catalogue", str(tmp_path / "c.tsv")]
    args += ["--clips", "100", "--of", of, "--variant", "v", "-o", str(tmp_path / "o.tsv")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"--of {of}: the full test set" in err and "--clips (100)" in err
    assert not (tmp_path / "o.tsv").exists()
