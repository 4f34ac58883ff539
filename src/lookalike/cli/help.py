"""How ``--help`` reads: the command and group classes every command is registered with, and each command's
examples (shown under its options).

Typer's own rendering is kept (panels, colours) with four changes: argument names in capitals in the usage
line and the arguments panel (``CATALOG``, not ``{catalog}``); no ``<bool>`` after a flag; a command's one-line
summary in ``lookalike --help`` joined into one line however its docstring is wrapped; and help text shown as
written (``'lookalike[torch]'`` is not Rich markup).
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

__all__ = ["EXAMPLES", "Command", "Group", "examples"]


def _one_line(text: str | None) -> str | None:
    """The first paragraph of ``text`` on one line."""
    return " ".join(text.split("\n\n")[0].split()) if text else None


def _plain(params: list[Any]) -> None:
    """Capital argument names; flags without a ``<bool>`` type (set once per parameter)."""
    for p in params:
        if isinstance(p, TyperArgument) and p.metavar is None and p.name:
            p.metavar = p.name.upper()
        elif isinstance(p, TyperOption) and p.is_flag and p.metavar is None:
            p.metavar = ""


def _adopt(command: Any, key: str) -> None:
    """Give ``command`` (built by Typer) this module's help: its examples as epilog, a one-line summary,
    help shown as written; a plain :class:`TyperCommand` becomes a :class:`Command`."""
    if getattr(command, "_lookalike_help", False):
        return
    command._lookalike_help = True
    if key in EXAMPLES and not command.epilog:
        command.epilog = examples(key)
    short = command.short_help or _one_line(command.help)
    command.short_help = escape(short) if short else short
    command.help = escape(command.help) if command.help else command.help
    command.epilog = escape(command.epilog) if command.epilog else command.epilog
    for p in command.params:
        if getattr(p, "help", None):
            p.help = escape(p.help)
    if type(command) is TyperCommand:
        command.__class__ = Command


class Command(TyperCommand):
    """A command whose help reads as described in this module's docstring."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _plain(params)
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] CATALOG [QUERY]``: required arguments bare, optional ones in brackets."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if isinstance(p, TyperArgument):
                name = (p.metavar or str(p.name).upper()) + ("..." if p.nargs != 1 else "")
                pieces.append(name if p.required else f"[{name}]")
        return pieces


class Group(TyperGroup):
    """A command group (``lookalike``, ``lookalike models``) whose commands, and itself, read as described in
    this module's docstring (``typer.Typer(cls=Group)``; the commands are registered as usual)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, command in self.commands.items():
            nested = f"{self.name} {name}"
            _adopt(command, nested if nested in EXAMPLES else name)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        _plain(params)
        return params


EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "ingest": [
        ("A folder of pictures (the file names are the ids)", "lookalike ingest my-catalog --images photos/"),
        ("A CSV with columns id, image, title, ...", "lookalike ingest my-catalog --csv products.csv"),
        ("Other column names", "lookalike ingest my-catalog --csv shop.csv --map id=sku --map image=picture_url"),
    ],
    "search": [
        ("A photo", "lookalike search my-catalog photo.jpg -k 5"),
        ("Words, only products in stock", "lookalike search my-catalog --text 'navy blue shirt for men' --in-stock"),
        ("A product, but in red", "lookalike search my-catalog --product 10051 --colour red"),
        ("Many phrases, one JSON line each", "lookalike search my-catalog --batch phrases.txt --phrases --json"),
        ("Only the left half of the photo", "lookalike search my-catalog photo.jpg --region 0,0,0.5,1"),
        ("The photo, ranked as dresses", "lookalike search my-catalog photo.jpg --kind Dresses"),
    ],
    "look": [
        ("Each garment of a photo with its 5 products", "lookalike look my-catalog outfit.jpg"),
        ("As JSON, 10 products a garment", "lookalike look my-catalog outfit.jpg -k 10 --json"),
    ],
    "info": [
        ("Products, model, size", "lookalike info my-catalog"),
        ("The pictures that failed, as JSON", "lookalike info my-catalog --errors --json"),
    ],
    "delete": [
        ("Two products", "lookalike delete my-catalog 10051 10052"),
        ("The ids in a file", "lookalike delete my-catalog --file gone.txt"),
    ],
    "check": [
        ("Is the catalogue sound?", "lookalike check my-catalog"),
        ("The problems as JSON", "lookalike check my-catalog --json"),
        ("Rebuild what can be rebuilt", "lookalike check my-catalog --repair"),
    ],
    "reindex": [
        ("A new model, switched to if not worse", "lookalike reindex my-catalog -m my-model --gate queries.csv"),
        ("Back to the model before", "lookalike reindex my-catalog --rollback"),
    ],
    "gc": [("Delete the generations not in use", "lookalike gc my-catalog")],
    "backup": [("A copy while it serves", "lookalike backup my-catalog /backups/my-catalog-monday")],
    "migrate": [
        ("To Milvus Lite", "lookalike migrate my-catalog products --dst-uri ./catalog.db"),
        (
            "Back to a directory",
            "lookalike migrate products my-catalog-copy --src-backend milvus --src-uri ./catalog.db "
            "--dst-backend embedded",
        ),
    ],
    "eval": [
        ("Every task, the default model", "lookalike eval"),
        ("Two models on the photo task", "lookalike eval -t photo -m lookalike-fashion -m efficientnet-lite0"),
        ("Your own labelled set", "lookalike eval --queries queries.csv --gallery gallery.csv"),
    ],
    "train": [
        ("A tiny trial run", "lookalike train --max-images 200 --epochs 1 --no-evaluate"),
        ("Train and install as the default model", "lookalike train --install"),
    ],
    "train-segmenter": [
        ("A tiny trial run", "lookalike train-segmenter --limit 50 --epochs 1"),
        ("The full run, into a folder", "lookalike train-segmenter -o runs/segmenter"),
    ],
    "train-colour": [
        ("A tiny trial run", "lookalike train-colour --limit 100"),
        ("With one composite per product", "lookalike train-colour --composites 1 -o runs/colour.json"),
    ],
    "train-kind": [
        ("Train the kind head into a file", "lookalike train-kind -o runs/lookalike-kind.json"),
        ("Without the small catalogue", "lookalike train-kind --per-class 0"),
    ],
    "train-detector": [
        ("A tiny trial run", "lookalike train-detector --limit 300 --outfits 200 --epochs 2 --real-photos 20"),
        ("The full run, into a folder", "lookalike train-detector -o runs/detector"),
    ],
    "serve": [
        ("This machine only", "lookalike serve my-catalog"),
        ("Every interface, another port", "lookalike serve my-catalog --host 0.0.0.0 --port 8080"),
    ],
    "models": [
        ("The models and whether each can run", "lookalike models"),
        ("Register your own ONNX model", "lookalike models add my-model model.onnx --size 224"),
    ],
    "models export": [
        ("EfficientNet-Lite0 to ONNX", "lookalike models export efficientnet-lite0"),
        ("Into a chosen file", "lookalike models export efficientnet-lite2 -o lite2.onnx"),
    ],
    "models add": [
        ("A 224-pixel model", "lookalike models add my-model model.onnx"),
        ("A model on 0-1 pixels", "lookalike models add my-model model.onnx --mean 0,0,0 --std 255,255,255"),
    ],
    "models remove": [("Forget a model you added", "lookalike models remove my-model")],
    "models quantize": [
        ("INT8, measured on the evaluation tasks", "lookalike models quantize efficientnet-lite0"),
        ("Calibrated on your pictures, not measured", "lookalike models quantize my-model --calibration photos/ "
         "--no-evaluate"),
    ],
}  # fmt: skip


def examples(command: str) -> str:
    """The epilog of ``command``: its examples, one per line under what it does."""
    lines = ["Examples:"]
    for what, line in EXAMPLES[command]:
        lines += ["", f"  {what}:", f"    $ {line}"]
    return "\n".join(lines)
