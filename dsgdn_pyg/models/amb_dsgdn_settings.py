r"""The settings of :class:`~dsgdn_pyg.models.AMBDSGDN` (torch-free; see
:mod:`dsgdn_pyg.models.model_settings`)."""
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional

from dsgdn_pyg.models.model_settings import ModelSettings
from dsgdn_pyg.settings import args_section, integer, number, setting
from dsgdn_pyg.settings.checks import _check_fusion_weights, parse_fusion_weights


@dataclass
class AMBDSGDNSettings(ModelSettings):
    r"""The settings of AMB-DSGDN (Wang et al., "AMB-DSGDN: Adaptive Modality-Balanced
    Dynamic Semantic Graph Differential Network for Multimodal Emotion Recognition",
    arXiv:2603.10043): the shared graph settings, the audio/visual context encoder, fusion,
    and adaptive modality dropout.
    """
    name: ClassVar[str] = 'amb-dsgdn'
    label: ClassVar[str] = 'AMB-DSGDN'
    model_path: ClassVar[str] = 'dsgdn_pyg.models.amb_dsgdn:AMBDSGDN'

    context_window: Optional[int] = setting(
        None, 'AMB-DSGDN: the audio/visual Transformer attends only within +-K utterances '
        '(linear in dialogue length).', check=integer(0), metavar='K', unset='whole dialogue')
    checkpoint_activations: bool = setting(
        False, 'Recompute the encoder and graph blocks in backward: less memory for more time '
        '(long dialogues; measured in benchmarks/README.md).')
    causal: bool = setting(
        False, 'AMB-DSGDN only: nothing reads the future (past relations 1, 2, 5 only, a causal '
        'audio/visual encoder), so the model can run live (dsgdn-pyg stream).')
    input_dropout: Optional[float] = setting(
        None, 'AMB-DSGDN: dropout of the input features before their projection (training '
        'only).', check=number(0, 1, below_maximum=True), preset=True)
    fusion_weights: Optional[Dict[str, float]] = setting(
        None, 'Fixed fusion weights (ablation).', check=_check_fusion_weights,
        parse=parse_fusion_weights, metavar='t=W,a=W,v=W', unset='learned (sum)')
    # Adaptive modality dropout.
    modality_dropout: bool = setting(True, 'Adaptive modality dropout.')
    q_base: Optional[float] = setting(None, 'Base drop probability of modality dropout.',
                                      check=number(0, 1), preset=True)
    md_lambda: Optional[float] = setting(None, 'Scale lambda of modality dropout.',
                                         check=number(0), preset=True)
    p_exe: Optional[float] = setting(None, 'Probability of executing modality dropout on a '
                                     'batch.', check=number(0, 1), preset=True)
    warmup_epochs: Optional[int] = setting(None, 'Epochs before modality dropout starts.',
                                           check=integer(0), preset=True)

    def model_kwargs(self) -> Dict[str, Any]:
        return dict(super().model_kwargs(), graph=self.graph,
                    modality_dropout=self.modality_dropout, q_base=self.q_base,
                    md_lambda=self.md_lambda, p_exe=self.p_exe,
                    warmup_epochs=self.warmup_epochs, fusion_weights=self.fusion_weights,
                    context_window=self.context_window,
                    checkpoint_activations=self.checkpoint_activations, causal=self.causal,
                    input_dropout=self.input_dropout)


AMBDSGDNSettings.__doc__ += args_section(dataclasses.fields(AMBDSGDNSettings))
