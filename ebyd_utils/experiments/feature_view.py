"""The feature view of notebook 08 (evaluation side: it stamps the trigger): the penultimate features of clean
and triggered test images in their first two principal components, before and after CUL. Before, triggered
images form their own cluster beside the target class's; after CUL has erased the clean features, the clean
clusters fold together while the triggered cluster stays apart -- the picture of "exposure". Three numbers go
with each panel, all in the full feature space: the share of triggered images whose nearest clean-class centroid
is the target's; how far apart the clean classes are (the mean distance between class centroids over the mean
distance of an image to its class centroid); and how far the triggered images sit from the clean ones (the
distance between their centroids over the mean distance of a clean image to the clean centroid).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA

from ..pipeline import Run, Suspect, subset_test
from ..train import as_input


@torch.no_grad()
def features(model, x, batch_size: int = 500) -> np.ndarray:
    """The model's penultimate features (its `features` method: the head's input) of uint8 images, eval mode."""
    if not hasattr(model, "features"):
        raise ValueError(f"the feature view needs a model with a `features` method; {type(model).__name__} has none")
    was_training = model.training
    model.eval()
    out = torch.cat([model.features(as_input(x[i : i + batch_size])).float() for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out.cpu().numpy()


def feature_view(run: Run, suspect: Suspect, exposed, n: int = 500) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points, summary): for the suspect ("before CUL") and the exposed model ("after CUL"), the first two
    principal components of the features of n random clean test images and of the triggered copies of those
    not of the target class; summary: per panel, the share of triggered images nearest the target's centroid and
    the variance the two components explain."""
    if suspect.attack is None or suspect.attack.single_target is None:
        raise ValueError("the feature view needs an all-to-one backdoored suspect (a trigger and one target)")
    data = subset_test(run.data, n)
    target = suspect.attack.single_target
    clean_y = data.test_y.cpu().numpy()
    keep = data.test_y != target
    triggered = suspect.attack.apply(data.test_x[keep])
    points, summary = [], []
    for when, model in (("before CUL", suspect.model), ("after CUL", exposed)):
        fc, ft = features(model, data.test_x), features(model, triggered)
        pca = PCA(n_components=2, random_state=0).fit(np.vstack([fc, ft]))
        for kind, f, labels in (("clean", fc, clean_y), ("triggered", ft, clean_y[keep.cpu().numpy()])):
            pcs = pca.transform(f)
            points.append(
                pd.DataFrame({"when": when, "kind": kind, "label": labels, "pc1": pcs[:, 0], "pc2": pcs[:, 1]})
            )
        centroids = np.stack([fc[clean_y == c].mean(0) for c in range(run.data.num_classes)])
        nearest = np.linalg.norm(ft[:, None] - centroids[None], axis=2).argmin(1)
        summary.append(
            {
                "when": when,
                "triggered_nearest_target": float((nearest == target).mean()),
                **separations(fc, clean_y, ft, centroids),
                "explained_variance": float(pca.explained_variance_ratio_.sum()),
                "n_clean": len(fc),
                "n_triggered": len(ft),
            }
        )
    ids = {"model_id": suspect.model_id, "attack": suspect.label, "target": target}
    return pd.concat(points, ignore_index=True).assign(**ids), pd.DataFrame(summary).assign(**ids)


def separations(fc: np.ndarray, clean_y: np.ndarray, ft: np.ndarray, centroids: np.ndarray) -> dict:
    """clean_class_separation: the mean distance between the clean class centroids over the mean distance of a
    clean image to its own class centroid (the classes fold together when it falls towards 1 or below);
    triggered_separation: the distance between the triggered and the clean centroid over the mean distance of a
    clean image to the clean centroid (the triggered images stand apart when it is well above 1)."""
    k = len(centroids)
    between = np.linalg.norm(centroids[:, None] - centroids[None], axis=2)[np.triu_indices(k, 1)].mean()
    within = np.linalg.norm(fc - centroids[clean_y], axis=1).mean()
    center = fc.mean(0)
    spread = np.linalg.norm(fc - center, axis=1).mean()
    return {
        "clean_class_separation": float(between / within),
        "triggered_separation": float(np.linalg.norm(ft.mean(0) - center) / spread),
    }


def view_lines(summary: pd.DataFrame) -> list[str]:
    """One line per attack and panel from the feature summary: the three numbers, with n."""
    return [
        f"feature view, {r.attack} ({r.model_id}), {r.when}: clean classes apart {r.clean_class_separation:.2f}x "
        f"their spread, triggered images {r.triggered_separation:.2f}x the clean spread from the clean ones, "
        f"{r.triggered_nearest_target:.2f} of {r.n_triggered} nearest the target's centroid ({r.n_clean} clean)."
        for r in summary.itertuples()
    ]
