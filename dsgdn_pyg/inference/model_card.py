r"""The model card (``README.md``) of a model folder: what the model is, its data, the
selected epoch, its scores, how to use it and its limits."""
from typing import Any, Mapping, Optional


def model_card(config: Mapping[str, Any], metrics: Optional[Mapping[str, Any]],
               notes: Optional[str] = None) -> str:
    r"""``README.md`` of a model folder: what it is, the data, the selected epoch, valid and
    test metrics with per-class F1, how to use it, its limits, and :obj:`notes` (Markdown)."""
    labels = list(config.get('label_names', []))
    results = dict(config.get('metrics') or {})
    if metrics:
        results = {s: metrics[s] for s in ('valid', 'test') if s in metrics} or results
    train_config = dict(config.get('train_config') or {})
    selected_on = (metrics or {}).get('selected_on', train_config.get('select_on', 'valid'))
    text = config.get('text_encoder') or {}
    lines = [f"# {config['model_name']} emotion recognition model (dsgdn-pyg)", '',
             f"Predicts one of {len(labels)} emotions ({', '.join(labels)}) for every "
             f"utterance of a conversation, from its "
             f"{_modality_names(config.get('modalities', []))}, with the dialogue graph of "
             f"AMB-DSGDN (arXiv 2603.10043; window {config.get('window')}).", '',
             '## Use', '', '```', f"dsgdn-pyg predict --model THIS_FOLDER --input talk.csv",
             '```', '', '```python', 'import dsgdn_pyg',
             "model = dsgdn_pyg.load_model('THIS_FOLDER')",
             "[result] = model.predict([[{'speaker': 'Ann', 'text': 'I got the job!'}]])",
             'result.predicted, result.confidence', '```', '',
             '## Model', '',
             f"- architecture: {config['model_name']}, "
             f"{config.get('num_parameters', 0):,} parameters, hidden width "
             f"{(config.get('model_config') or {}).get('hidden_channels')}",
             f"- modalities: {', '.join(config.get('modalities', []))}; feature widths "
             f"{config.get('feature_dims')}",
             f"- text encoder: {_text_description(text)}"]
    if config.get('audio_features'):
        lines.append(f"- audio: openSMILE {config['audio_features'].get('feature_set')} "
                     f"functionals, standardised with the training split's mean and std")
    if config.get('video_features'):
        lines.append(f"- video: {config['video_features'].get('extractor')} face features, "
                     f"standardised with the training split's mean and std")
    lines += ['', '## Training data', '',
              f"- dataset: `{config.get('dataset')}`, data seed {config.get('data_seed')}",
              f"- training: {train_config.get('epochs')} epoch(s), seed "
              f"{train_config.get('seed')}, learning rate {train_config.get('lr')}, batch "
              f"{train_config.get('batch_size')} dialogues",
              f"- selected epoch: {config.get('epoch')} (best weighted F1 on {selected_on})",
              '', '## Results (selected epoch)', '']
    if results:
        lines += ['| split | weighted F1 | accuracy | utterances |', '|---|---|---|---|']
        lines += [f"| {split} | {r.get('wa_f1', float('nan')):.2f} | "
                  f"{r.get('wa_acc', float('nan')):.2f} | {r.get('num_utterances', '')} |"
                  for split, r in results.items()]
        lines += ['', 'Per-class F1 (percent):', '',
                  '| class | ' + ' | '.join(results) + ' |',
                  '|---|' + '---|' * len(results)]
        for name in labels:
            cells = [_per_class(results[s], name) for s in results]
            lines.append(f"| {name} | " + ' | '.join(cells) + ' |')
    else:
        lines.append('(no metrics recorded with this checkpoint)')
    lines += ['', '## Intended use', '',
              'Research on emotion recognition in conversation: labelling the utterances of '
              'transcribed dialogues in the style and language of the training data '
              f"({config.get('corpus_name')}). The scores above are on that corpus's "
              'held-out splits.', '', '## Limits', '',
              '- Trained on one corpus: expect lower scores on other domains, languages, '
              'speaking styles and label definitions.',
              '- Rare classes are predicted poorly (see the per-class F1); a prediction is a '
              'guess with a confidence, not a diagnosis of anyone\'s feelings.',
              '- Not for decisions about people (hiring, health, surveillance).',
              '- The model reads at most '
              f"{(config.get('model_config') or {}).get('num_speakers')} speakers per "
              'dialogue.', '']
    if notes:
        lines += [notes.strip(), '']
    lines += ['Every file of this folder is checked at load against the SHA-256 in '
              '`config.json`.', '']
    return '\n'.join(lines)


def _modality_names(modalities) -> str:
    names = {'t': 'text', 'a': 'audio', 'v': 'video'}
    return ' and '.join(names.get(m, m) for m in modalities) or 'features'


def _text_description(text: Mapping[str, Any]) -> str:
    if not text:
        return "none (the dataset's own text features)"
    if 'base_model' in text:
        tuned = 'fine-tuned' if text.get('fine_tuned') else 'frozen'
        where = ' (in `text_encoder/`)' if text.get('folder') else ''
        if text.get('delta'):
            where = (f" (stored as a float16 {text.get('delta_form')} delta over the base "
                     f"weights, in `{text['delta']}`)")
        context = f", reads {text['context']} previous utterances" if text.get('context') else ''
        return f"{text['base_model']}, {tuned}{where}{context}"
    return f"TF-IDF + SVD ({text.get('options')})"


def _per_class(result: Mapping[str, Any], name: str) -> str:
    value = (result.get('per_class_f1') or {}).get(name)
    return f"{value:.2f}" if value is not None else ''


__all__ = ['model_card']
