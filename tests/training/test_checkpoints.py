"""Resuming a killed training run: only a complete checkpoint is resumed from."""

from training.trainers.common import latest_checkpoint


def test_a_checkpoint_cut_short_by_a_kill_is_skipped_and_removed(tmp_path):
    complete, partial = tmp_path / "checkpoint-2", tmp_path / "checkpoint-4"
    complete.mkdir()
    (complete / "trainer_state.json").write_text('{"global_step": 2}')
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(b"half")
    (tmp_path / "checkpoint-6").mkdir()
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')  # killed mid-write
    assert latest_checkpoint(tmp_path) == str(complete)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]
    assert latest_checkpoint(tmp_path / "none-yet") is None
