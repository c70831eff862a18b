r"""Using a trained model: model folders (:mod:`dsgdn_pyg.inference.model_folder`)."""
