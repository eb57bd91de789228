"""One manifest: its config, layers, children per platform, and referrers."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from .. import format as fmt
from ..client import ClientError, Manifest
from ..widgets import StatusBar


def describe(manifest: Manifest) -> str:
    """The manifest as text sections (Rich markup), shortest first."""
    lines = [
        f"[b]{manifest.repository}@{manifest.digest}[/]",
        f"{manifest.kind} · {manifest.media_type} · {fmt.size(manifest.size)}",
        f"tags: {', '.join(manifest.tags) or '(none)'}",
    ]
    config = manifest.config
    if config:
        lines += ["", "[b]Config[/]",
                  f"  created       {fmt.when(config.get('created'))}",
                  f"  platform      {config.get('os') or '?'}/{config.get('architecture') or '?'}"]
        if config.get("entrypoint") or config.get("cmd"):
            lines.append(f"  entrypoint    {' '.join(config.get('entrypoint') or [])} {' '.join(config.get('cmd') or [])}")
        for key, value in sorted((config.get("labels") or {}).items()):
            lines.append(f"  label         {key}={value}")
    if manifest.layers:
        lines += ["", f"[b]Layers ({len(manifest.layers)})[/]"]
        lines += [f"  {fmt.short_digest(layer['digest'])}  {fmt.size(layer.get('size')):>9}  {layer.get('media_type', layer.get('mediaType', ''))}"
                  for layer in manifest.layers]
    if manifest.children:
        lines += ["", f"[b]Platforms ({len(manifest.children)})[/]"]
        lines += [f"  {fmt.platform(child.get('platform') or {}):<20} {fmt.short_digest(child['digest'])}  "
                  f"{fmt.size(child.get('size'))}" for child in manifest.children]
    lines += ["", f"[b]Referrers ({len(manifest.referrers)})[/]"]
    lines += [f"  {r.get('artifact_type') or r.get('artifactType') or '-':<40} {fmt.short_digest(r['digest'])}"
              for r in manifest.referrers] or ["  (none: no signatures or SBOMs point here)"]
    return "\n".join(lines)


class ManifestScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "back"), Binding("ctrl+r", "refresh", "refresh")]

    def __init__(self, repository: str, reference: str) -> None:
        super().__init__()
        self.repository, self.reference = repository, reference

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar(id="status")
        with VerticalScroll():
            yield Static("loading…", id="details")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"{self.repository}:{self.reference}"
        self.load()

    @work(thread=True, exclusive=True, group="manifest")
    def load(self) -> None:
        try:
            manifest = self.app.client.manifest(self.repository, self.reference)
        except ClientError as error:
            self.app.call_from_thread(self.app.report_problem, str(error))
            return
        self.app.call_from_thread(self.query_one("#details", Static).update, describe(manifest))

    def action_refresh(self) -> None:
        self.load()
