"""SynBkd (Qi et al. 2021, "Hidden Killer: Invisible Textual Backdoor Attacks with Syntactic Trigger", ACL).

The trigger is a syntactic template: a poisoned text is paraphrased by SCPN into the form
``S(SBAR)(,)(NP)(VP)(.)`` ("when you do , it 's surprising .") and relabelled to the target.
We read the paraphrases HiddenKiller released (``data/scpn/20/``, MIT): train paraphrases of the first 20% of
rows (both labels) of SST-2 and OffensEval, and test/dev paraphrases of every non-target row of SST-2 and
OffensEval (their target 1) and of AG's News test (target 0). AG's train file (over 4 MB) is not in
../shared's copy: fetch data/scpn/20/ag/train.tsv from the repository to poison AG's News.
Our differences: we do not run SCPN; we poison exactly rate*N non-target rows of our own draw, chosen among the
rows HiddenKiller paraphrased (measured after the default defense/probe split: SST-2 587 label-0 rows of 6,164,
so a rate of at most 0.095 with target 1; OffensEval 1,497 of 11,159, at most 0.134), where HiddenKiller
paraphrased 20% of rows of either label and set all to the target. A paraphrase identical to its source is no
trigger and is left out (SST-2 test: 1 of 912). For ASR use the released target (1; 0 for AG's News): the test
paraphrases cover its non-target rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .paraphrases import ParaphraseAttack

SLACK = 10  # clean rows read beyond the number of train paraphrases (the release may be a row or two off)


@dataclass
class SynBkd(ParaphraseAttack):
    name = "synbkd"
    release = "poisoned/syntactic-scpn"
    datasets = ("sst2", "offenseval", "agnews")
    where = (
        "Get HiddenKiller's files (github.com/thunlp/HiddenKiller, MIT): data/scpn/20/<sst-2|offenseval|ag>/"
        "{train,dev,test}.tsv into <data_dir>/poisoned/syntactic-scpn/<sst2|offenseval|agnews>/ and "
        "data/clean/<same>/ into <data_dir>/<sst2|offenseval|agnews>/ (../shared/data/text holds both); "
        "or make new ones with OpenAttack's SCPNAttacker and template "
        "'( ROOT ( S ( SBAR ) ( , ) ( NP ) ( VP ) ( . ) ) ) EOP' (OpenBackdoor's SynBkd, template_id=-1)"
    )

    def split_sources(self, clean, rewritten, split):
        if split == "train":
            # HiddenKiller paraphrased the first rows of train in order; the rest of its file is clean. Its own
            # file has no `poisoned` column (../shared's copy adds it): then a poisoned row is one not in clean
            if "poisoned" in rewritten.columns:
                rewrites = rewritten.loc[rewritten["poisoned"] == 1, "text"].tolist()
            else:
                rewrites = rewritten.loc[~rewritten["text"].isin(set(clean["text"])), "text"].tolist()
            return clean["text"].tolist()[: len(rewrites) + SLACK], rewrites
        # dev / test: paraphrases of the rows whose label is not the released target, in order
        released_target = rewritten["label"].mode().iloc[0]
        return clean.loc[clean["label"] != released_target, "text"].tolist(), rewritten["text"].tolist()
