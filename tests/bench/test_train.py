"""``fercore bench train`` keeps running (a smoke test: rates are measured, never asserted)."""

from fercore.bench.train import bench_train


def test_bench_train_reports_three_pipelines(capsys):
    result = bench_train(profile="quick", steps=2, warmup=1, n_images=128)
    for key in ("a_bare", "b_fercore", "c_dataloader"):
        assert result[key]["images_per_s"] > 0
    assert result["b_over_a"] == result["b_fercore"]["images_per_s"] / result["a_bare"]["images_per_s"]
    assert result["b_over_c"] == result["b_fercore"]["images_per_s"] / result["c_dataloader"]["images_per_s"]
    out = capsys.readouterr().out
    assert "(b)/(a)" in out and "(b)/(c)" in out and "quick zero_bias_cnn (48x48" in out
