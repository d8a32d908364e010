import pytest

from pipeline.params import IngestParams, NlpParams, paths, read_params, section


def test_params_yaml_sections_load():
    params = read_params()
    assert section(IngestParams, params["ingest"]).n_process >= 1
    assert section(NlpParams, params["nlp"]).model == "nl_core_news_sm"
    p = paths(params)
    assert p.transcripts.is_dir() and p.gemeenten.is_file()


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match="stirct"):
        section(IngestParams, {"stirct": True})
