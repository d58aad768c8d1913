"""The study's HTML report: WMH burden plots, regional split, Fazekas grades, age and change across
sessions, flags."""

import io
import math

import numpy as np

FAZEKAS_GRADES = {"fazekas_periventricular": "periventricular_wmh_volume_ml", "fazekas_deep": "deep_wmh_volume_ml"}


def _svg(figure):
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _frame(rows, participants):
    import pandas as pd

    frame = pd.DataFrame(rows)
    for column in ("wmh_volume_ml", "periventricular_wmh_volume_ml", "deep_wmh_volume_ml", "wmh_fraction_of_brain"):
        frame[column] = frame.get(column, pd.Series(dtype=float)).map(_number)
    ages = {pid: _number(row.get("age")) for pid, row in participants.items()}
    frame["age"] = frame["participant_id"].map(lambda pid: ages.get(pid, math.nan))
    frame["scan"] = frame.apply(lambda r: " ".join(v for v in (r["participant_id"], r["session_id"], r["acquisition"],
                                                               r["run"]) if v != "n/a"), axis=1)
    return frame


def _change_plots(changes):
    """The change across sessions per participant (``group_longitudinal.tsv`` rows): WMH volume
    change, per year where every participant's sessions are dated, and the new and enlarging lesions."""
    import matplotlib.pyplot as plt

    per_year = all(np.isfinite(_number(c["wmh_change_ml_per_year"])) for c in changes)
    column, unit = ("wmh_change_ml_per_year", "mL per year") if per_year else ("wmh_change_ml", "mL")
    names = [c["series"].removesuffix("_desc-longitudinal") for c in changes]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 0.35 * len(changes) + 1.6), sharey=True)
    left.barh(names, [_number(c[column]) for c in changes], color="#4c72b0")
    left.axvline(0, color="0.4", lw=0.8)
    left.set_xlabel(f"WMH volume change ({unit})")
    left.invert_yaxis()
    right.barh(names, [int(c["new_wmh_count"]) for c in changes], color="#39a839", label="new")
    right.barh(names, [int(c["enlarging_wmh_count"]) for c in changes], left=[int(c["new_wmh_count"]) for c in changes],
               color="#ff9f1a", label="enlarging")
    right.set_xlabel("lesions")
    right.legend(fontsize="small", frameon=False)
    caption = ("Each participant's change from the first to the last compared session, from the consistent "
               "segmentation (every session judged with the others in view): the WMH volume change "
               + ("per year (acq_time in sessions.tsv)" if per_year else "(not every session is dated, so not per year)")
               + ", and the new and enlarging lesions counted over every pair of consecutive sessions.")
    return [("Change across sessions", caption, _svg(fig))]


def _plots(frame, changes=()):
    """(title, caption, svg) of every plot the data allow; ``changes``: the participants' change
    across sessions (``group_longitudinal.tsv`` rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    plots = []
    fig, ax = plt.subplots(figsize=(7, 3.2))
    sns.histplot(frame["wmh_volume_ml"], ax=ax, bins=min(20, max(5, len(frame) // 2)), color="#4c72b0")
    sns.rugplot(frame["wmh_volume_ml"], ax=ax, color="#c44e52", height=0.08)
    ax.set_xlabel("WMH volume (mL)")
    ax.set_ylabel("scans")
    plots.append(("WMH volume", f"Distribution of the total WMH volume over {len(frame)} scan(s); ticks are scans.",
                  _svg(fig)))
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    sns.scatterplot(data=frame, x="periventricular_wmh_volume_ml", y="deep_wmh_volume_ml", ax=ax, color="#4c72b0")
    top = 1.08 * max(1.0, float(np.nanmax(frame[["periventricular_wmh_volume_ml", "deep_wmh_volume_ml"]].to_numpy())))
    ax.plot([0, top], [0, top], color="0.6", lw=0.8, ls="--")
    ax.set(xlim=(0, top), ylim=(0, top), aspect="equal")
    ax.set_xlabel("periventricular WMH (mL)")
    ax.set_ylabel("deep WMH (mL)")
    plots.append(("Periventricular versus deep", "Each point is a scan; the dashed line is equal volumes. "
                  "Periventricular: within 10 mm of the lateral ventricles.", _svg(fig)))
    grades = frame.reindex(columns=list(FAZEKAS_GRADES)).map(_number)
    if grades.notna().all(axis=None):
        plots.append(_fazekas_plot(frame.assign(**grades.astype(int))))
    if frame["age"].notna().sum() >= 3:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        sns.regplot(data=frame, x="age", y="wmh_volume_ml", ax=ax, ci=None, color="#4c72b0",
                    line_kws={"color": "0.4", "lw": 1})
        ax.set_xlabel("age (participants.tsv)")
        ax.set_ylabel("WMH volume (mL)")
        plots.append(("WMH volume against age", "Each point is a scan, at the participant's age in participants.tsv;"
                      " the line is a least-squares fit, for orientation only.", _svg(fig)))
    if changes:
        plots.extend(_change_plots(changes))
        return plots
    sessions = frame[frame["session_id"] != "n/a"]
    repeated = sessions.groupby("participant_id").filter(lambda g: g["session_id"].nunique() > 1)
    if not repeated.empty:
        fig, ax = plt.subplots(figsize=(6, 3.8))
        sns.lineplot(data=repeated.sort_values("session_id"), x="session_id", y="wmh_volume_ml",
                     hue="participant_id", marker="o", ax=ax, estimator=None)
        ax.set_xlabel("session")
        ax.set_ylabel("WMH volume (mL)")
        ax.legend(title="participant", fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
        plots.append(("Change across sessions", "WMH volume of each participant scanned in several sessions, "
                      "sessions in label order.", _svg(fig)))
    return plots


def _fazekas_plot(frame):
    """Each region's WMH volume against its Fazekas grade, one point per scan."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), sharey=False)
    for ax, (grade, volume) in zip(axes, FAZEKAS_GRADES.items(), strict=True):
        sns.stripplot(data=frame, x=grade, y=volume, order=[0, 1, 2, 3], ax=ax, color="#4c72b0", jitter=0.15,
                      native_scale=False)
        region = volume.split("_")[0]
        ax.set_xlabel(f"Fazekas {region} grade")
        ax.set_ylabel(f"{region} WMH (mL)")
    fig.tight_layout()
    return ("Fazekas grades and volumes", "Each point is a scan: the grade read from its segmentation "
            "(periventricular: how far the WMH reach from the ventricles' wall; deep: the largest deep lesion) "
            "against the volume of the same region. A scan far from the others of its grade deserves a look.",
            _svg(fig))


def group_report_html(rows, participants, summary, changes=()):
    """The whole group report as one self-contained HTML page; ``changes``: the participants' change
    across sessions (``group_longitudinal.tsv`` rows)."""
    import jinja2

    from bids_deepwmh import __version__
    from bids_deepwmh.data import load

    frame = _frame(rows, participants)
    flagged = [{"scan": r["scan"], "flags": r.get("quality_flags", "n/a"),
                "report": f"{r['participant_id']}.html"} for _, r in frame.iterrows()
               if str(r.get("quality_flagged", "")).lower() == "true"]
    columns = ["scan", "wmh_volume_ml", "periventricular_wmh_volume_ml", "deep_wmh_volume_ml", "wmh_count",
               "wmh_fraction_of_brain", *FAZEKAS_GRADES, "quality_flags"]
    table = [{c: r.get(c, "n/a") for c in columns} | {"report": f"{r['participant_id']}.html"}
             for _, r in frame.iterrows()]
    template = jinja2.Template(load("group-report.html.j2").read_text(), autoescape=True)
    change_columns = ["series", "sessions_compared", "years", "first_wmh_volume_ml", "last_wmh_volume_ml",
                      "wmh_change_ml", "wmh_change_ml_per_year", "new_wmh_count", "enlarging_wmh_count",
                      "shrinking_wmh_count", "disappeared_wmh_count"]
    change_table = [{c: ("n/a" if isinstance(row[c], float) and math.isnan(row[c]) else row[c]) for c in change_columns}
                    | {"report": f"{row['participant_id']}.html"} for row in changes]
    return template.render(version=__version__, summary=summary, plots=_plots(frame, changes), flagged=flagged,
                           columns=columns, table=table, change_columns=change_columns, change_table=change_table)
