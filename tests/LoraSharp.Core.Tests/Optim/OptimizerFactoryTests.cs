// Optimizer names as Hugging Face TrainingArguments.optim / text-generation-webui spell them.
using LoraSharp.Core.Optim;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Tests.Optim;

public class OptimizerFactoryTests
{
    [Theory]
    [InlineData("adamw", typeof(AdamW))]
    [InlineData("adamw_torch", typeof(AdamW))]
    [InlineData("ADAMW_HF", typeof(AdamW))]
    [InlineData("adam", typeof(Adam))]
    [InlineData("sgd", typeof(Sgd))]
    [InlineData("adafactor", typeof(Adafactor))]
    [InlineData("lion", typeof(Lion))]
    [InlineData("lion_32bit", typeof(Lion))]
    [InlineData("sophia", typeof(Sophia))]
    [InlineData("SophiaG", typeof(Sophia))]
    public void Create_KnownName_GivesThatOptimizer(string name, Type type)
    {
        var o = OptimizerFactory.Create(name);
        Assert.IsType(type, o);
        Assert.Contains(o.Name, OptimizerFactory.Names);
    }

    [Theory]
    [InlineData("adamw_8bit")]
    [InlineData("")]
    [InlineData("rmsprop")]
    public void Create_UnknownName_ListsValidNames(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => OptimizerFactory.Create(name));
        Assert.Contains($"'{name}'", e.Message);
        foreach (string valid in OptimizerFactory.Names) Assert.Contains(valid, e.Message);
    }

    [Fact]
    public void Create_AppliesOptionsAndPerOptimizerDefaults()
    {
        var lion = (Lion)OptimizerFactory.Create("lion", new OptimizerOptions { WeightDecay = 0.1 });
        Assert.Equal(0.99, lion.Beta2);
        Assert.Equal(0.1, lion.WeightDecay);
        var adamw = (AdamW)OptimizerFactory.Create("adamw", new OptimizerOptions { Beta2 = 0.95, Epsilon = 1e-6 });
        Assert.Equal((0.9, 0.95, 1e-6, 0.0), (adamw.Beta1, adamw.Beta2, adamw.Eps, adamw.WeightDecay));
        var ada = (Adafactor)OptimizerFactory.Create("adafactor");
        Assert.False(ada.RelativeStep);
        Assert.False(ada.ScaleParameter);
        Assert.Null(ada.Beta1);
        var sgd = (Sgd)OptimizerFactory.Create("sgd", new OptimizerOptions { Momentum = 0.9, Nesterov = true });
        Assert.True(sgd.Nesterov);
        Assert.Throws<UserErrorException>(() => OptimizerFactory.Create("sgd", new OptimizerOptions { Nesterov = true }));
    }

    [Fact]
    public void Parameter_MismatchedShapes_ThrowsNamingBoth()
    {
        using var v = Tensor.Zeros(DType.F32, 2, 3);
        using var g = Tensor.Zeros(DType.F32, 3, 2);
        var e = Assert.Throws<ArgumentException>(() => new Parameter("w", v, g));
        Assert.Contains("[2, 3]", e.Message);
        Assert.Contains("[3, 2]", e.Message);
        using var h = Tensor.Zeros(DType.BF16, 2, 3);
        Assert.Throws<ArgumentException>(() => new Parameter("w", v, h));
    }
}
