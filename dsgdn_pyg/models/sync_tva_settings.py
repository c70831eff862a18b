r"""The settings of :class:`~dsgdn_pyg.models.SyncTVA` (torch-free; see
:mod:`dsgdn_pyg.models.model_settings`)."""
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Dict

from dsgdn_pyg.models.model_settings import ModelSettings
from dsgdn_pyg.settings import args_section, integer, setting


@dataclass
class SyncTVASettings(ModelSettings):
    r"""The settings of the Sync-TVA-style heterogeneous model: the shared graph settings
    (``graph`` off drops the heterogeneous graph layers) and its cross-modal edges.
    """
    name: ClassVar[str] = 'sync-tva'
    label: ClassVar[str] = 'Sync-TVA'
    model_path: ClassVar[str] = 'dsgdn_pyg.models.sync_tva:SyncTVA'

    cross_window: int = setting(0, 'Sync-TVA: cross-modal edges also join utterances up to K '
                                'positions apart.', check=integer(0), metavar='K')

    def model_kwargs(self) -> Dict[str, Any]:
        return dict(super().model_kwargs(), num_layers=2 if self.graph else 0,
                    cross_window=self.cross_window)


SyncTVASettings.__doc__ += args_section(dataclasses.fields(SyncTVASettings))
