// Sophia-G against the float64 PyTorch reference of tests/references/methods_reference.py (sophia_steps.json):
// seven steps of two parameters with the Hessian EMA refreshed every k steps, values, momentum and Hessian after
// every step within 1e-5 relative.
using System.Text.Json;
using LoraSharp.Core.Optim;
using LoraSharp.Core.Tensors;
using LoraSharp.TestSupport;

namespace LoraSharp.Training.Tests.Methods;

public class SophiaReferenceTests
{
    [Fact]
    public void Steps_WithHessianUpdates_MatchFloat64Reference()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(MethodReferences.Path("sophia_steps.json")));
        int cases = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            static float[] F(JsonElement e) => e.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
            static double[] D(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var opt = new Sophia(c.GetProperty("beta1").GetDouble(), c.GetProperty("beta2").GetDouble(), c.GetProperty("gamma").GetDouble(),
                c.GetProperty("eps").GetDouble(), c.GetProperty("weight_decay").GetDouble());
            long tokens = c.GetProperty("batch_tokens").GetInt64();
            var tensors = new List<Tensor>();
            var parameters = new List<Parameter>();
            int idx = 0;
            foreach (var init in c.GetProperty("init").EnumerateArray())
            {
                var v = F(init);
                var value = Tensor.FromFloats(v, v.Length);
                var grad = Tensor.FromFloats(new float[v.Length], v.Length);
                tensors.Add(value); tensors.Add(grad);
                parameters.Add(new Parameter($"p{idx++}", value, grad));
            }
            try
            {
                int t = 0;
                foreach (var step in c.GetProperty("steps").EnumerateArray())
                {
                    t++;
                    var grads = step.GetProperty("grads").EnumerateArray().ToList();
                    for (int i = 0; i < parameters.Count; i++) F(grads[i]).CopyTo(parameters[i].Grad.Floats);
                    opt.Step(parameters, step.GetProperty("lr").GetDouble());
                    if (step.TryGetProperty("sampled_grads", out var sampled))
                    {
                        var sg = sampled.EnumerateArray().ToList();
                        for (int i = 0; i < parameters.Count; i++) F(sg[i]).CopyTo(parameters[i].Grad.Floats);
                        opt.UpdateHessian(parameters, tokens);
                    }
                    var state = opt.ExportState().Buffers;
                    var ps = step.GetProperty("params").EnumerateArray().ToList();
                    var ms = step.GetProperty("exp_avg").EnumerateArray().ToList();
                    var hs = step.GetProperty("hessian").EnumerateArray().ToList();
                    for (int i = 0; i < parameters.Count; i++)
                    {
                        string where = $"case {cases} step {t} p{i}";
                        MethodReferences.AssertRelative(parameters[i].Value.Floats, D(ps[i]), 1e-5, where + " value");
                        MethodReferences.AssertRelative(state[$"p{i}.exp_avg"], D(ms[i]), 1e-5, where + " exp_avg");
                        MethodReferences.AssertRelative(state[$"p{i}.hessian"], D(hs[i]), 1e-5, where + " hessian");
                    }
                }
                Assert.Equal(7, t);
            }
            finally
            {
                foreach (var x in tensors) x.Dispose();
            }
            cases++;
        }
        Assert.Equal(2, cases);
    }
}
