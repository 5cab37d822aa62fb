from frontend.charts import weights_svg


def test_weights_chart_escapes_names_and_downsamples():
    svg = weights_svg(['<evil "name">', "b"], list(range(0, 1001)), [[0.5, 0.5]] * 1001)
    assert "<evil" not in svg and "&lt;evil &quot;name&quot;&gt;" in svg and svg.count("<polyline") == 2
