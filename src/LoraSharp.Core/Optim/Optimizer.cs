// The base of every optimizer: the step counter (t of the bias corrections, 1-based inside a step as in torch),
// per-parameter state buffers keyed by parameter name, ZeroGrad, and export/import of the state for checkpoints.
// Subclasses implement one step. It does not schedule the learning rate (Training.Schedules does) and does not
// clip gradients (GradientClipping does): Step takes the learning rate for this step as an argument.
namespace LoraSharp.Core.Optim;

/// <summary>An optimizer over a list of <see cref="Parameter"/>s, with checkpointable state.</summary>
public abstract class Optimizer
{
    // State buffers keyed by (parameter name, buffer name): a tuple key, so lookups on the hot path allocate nothing.
    private readonly Dictionary<(string Param, string Buffer), float[]> _buffers = new();
    // Buffers imported from a checkpoint whose parameter has not been seen yet; checked on the next Step.
    private HashSet<string>? _importedParams;
    // The last parameter list whose names were checked for uniqueness (checked again only when the list changes).
    private IReadOnlyList<Parameter>? _checkedList;
    private int _checkedCount;

    /// <summary>The name <see cref="OptimizerFactory"/> knows this optimizer by ("adamw", "adam", "sgd", "adafactor", "lion", "sophia").</summary>
    public abstract string Name { get; }

    /// <summary>Steps taken so far (0 before the first <see cref="Step"/>).</summary>
    public int StepCount { get; private set; }

    /// <summary>
    /// Takes one optimizer step over <paramref name="parameters"/> with learning rate <paramref name="learningRate"/>:
    /// increments <see cref="StepCount"/> and updates every value in place from its gradient. Gradients are read only.
    /// </summary>
    public void Step(IReadOnlyList<Parameter> parameters, double learningRate)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!double.IsFinite(learningRate) || learningRate < 0)
            throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "The learning rate must be a finite number >= 0.");
        if (_importedParams is { } imported)
        {
            var names = new HashSet<string>(parameters.Count);
            foreach (var p in parameters) names.Add(p.Name);
            foreach (string name in imported)
                if (!names.Contains(name))
                    throw new UserErrorException(
                        $"The imported optimizer state has buffers for parameter '{name}', which is not among the {parameters.Count} parameters " +
                        "being trained. The checkpoint was made for a different adapter (other target modules or layers); resume with the same LoRA settings.");
            _importedParams = null;
        }
        if (!ReferenceEquals(parameters, _checkedList) || parameters.Count != _checkedCount)
        {
            var unique = new HashSet<string>(parameters.Count, StringComparer.Ordinal);
            foreach (var p in parameters)
                if (!unique.Add(p.Name))
                    throw new ArgumentException(
                        $"Two parameters are named '{p.Name}'; optimizer state is kept by name, so names must be unique.", nameof(parameters));
            _checkedList = parameters;
            _checkedCount = parameters.Count;
        }
        StepCount++;
        bool grouped = false;
        for (int i = 0; i < parameters.Count && !grouped; i++) grouped = parameters[i].LearningRateScale != 1;
        if (!grouped)
        {
            StepCore(parameters, learningRate, StepCount);
            return;
        }
        // Parameter groups (LoRA+): one StepCore per distinct scale, each with learning rate lr × scale, as torch
        // steps each param_group with its own lr (weight decay p *= 1 - lr·wd uses the group's lr too).
        foreach (var group in GroupByScale(parameters))
            StepCore(group.Parameters, learningRate * group.Scale, StepCount);
    }

    private List<(double Scale, List<Parameter> Parameters)>? _groups;
    private IReadOnlyList<Parameter>? _groupedList;

    // The groups of the last list, rebuilt only when the list or a scale changed (checked without allocating).
    private List<(double Scale, List<Parameter> Parameters)> GroupByScale(IReadOnlyList<Parameter> parameters)
    {
        if (_groups != null && ReferenceEquals(parameters, _groupedList) && StillGrouped(_groups, parameters.Count)) return _groups;
        var groups = new List<(double Scale, List<Parameter> Parameters)>();
        foreach (var p in parameters)
        {
            int g = -1;
            for (int i = 0; i < groups.Count && g < 0; i++) if (groups[i].Scale == p.LearningRateScale) g = i;
            if (g < 0) groups.Add((p.LearningRateScale, [p]));
            else groups[g].Parameters.Add(p);
        }
        _groups = groups;
        _groupedList = parameters;
        return groups;
    }

    private static bool StillGrouped(List<(double Scale, List<Parameter> Parameters)> groups, int count)
    {
        int n = 0;
        foreach (var (scale, list) in groups)
        {
            n += list.Count;
            foreach (var p in list) if (p.LearningRateScale != scale) return false;
        }
        return n == count;
    }

    /// <summary>One step; <paramref name="step"/> is the new (1-based) step count.</summary>
    protected abstract void StepCore(IReadOnlyList<Parameter> parameters, double learningRate, int step);

    /// <summary>Sets every gradient to zero (backward kernels add into gradients, so call this before each backward).</summary>
    public static void ZeroGrad(IReadOnlyList<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        for (int i = 0; i < parameters.Count; i++) parameters[i].Grad.Floats.Clear();   // no enumerator allocated per step
    }

    /// <summary>
    /// The buffer <paramref name="buffer"/> of parameter <paramref name="p"/>, <paramref name="length"/> floats, created
    /// zero-filled on first use (<paramref name="created"/> true then). An imported buffer of another length is an error.
    /// </summary>
    protected internal float[] Buffer(Parameter p, string buffer, int length, out bool created)
    {
        if (_buffers.TryGetValue((p.Name, buffer), out var b))
        {
            if (b.Length != length)
                throw new UserErrorException(
                    $"Optimizer state '{p.Name}.{buffer}' has {b.Length} values but parameter '{p.Name}' of shape {p.Value.ShapeText} needs {length}. " +
                    "The checkpoint was made for a different adapter (another rank or model); resume with the same LoRA settings.");
            created = false;
            return b;
        }
        b = new float[length];
        _buffers[(p.Name, buffer)] = b;
        created = true;
        return b;
    }

    /// <summary>Like <see cref="Buffer(Parameter, string, int, out bool)"/> without the flag.</summary>
    protected internal float[] Buffer(Parameter p, string buffer, int length) => Buffer(p, buffer, length, out _);

    /// <summary>Bytes the state buffers hold now (what the optimizer adds to memory beyond parameters and gradients).</summary>
    public long StateBytes
    {
        get
        {
            long n = 0;
            foreach (var b in _buffers.Values) n += b.Length;
            return n * sizeof(float);
        }
    }

    /// <summary>A copy of the state: step count and every buffer as "<c>parameter</c>.<c>buffer</c>" → floats.</summary>
    public OptimizerState ExportState()
    {
        var d = new SortedDictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var ((param, buffer), values) in _buffers) d[param + "." + buffer] = (float[])values.Clone();
        return new OptimizerState(Name, StepCount, d);
    }

    /// <summary>
    /// Replaces the state with a copy of <paramref name="state"/> (from <see cref="ExportState"/> of the same kind of
    /// optimizer). The next <see cref="Step"/> then continues exactly where the exported optimizer stopped.
    /// </summary>
    public void ImportState(OptimizerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!string.Equals(state.Optimizer, Name, StringComparison.Ordinal))
            throw new UserErrorException(
                $"The optimizer state was saved by '{state.Optimizer}' but this optimizer is '{Name}'; resume with --optim {state.Optimizer}.");
        if (state.Step < 0) throw new UserErrorException($"The optimizer state has a negative step count ({state.Step}); the checkpoint is damaged: resume from another checkpoint or start over.");
        var buffers = new Dictionary<(string, string), float[]>();
        var imported = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, values) in state.Buffers)
        {
            int dot = key.LastIndexOf('.');
            if (dot <= 0 || dot == key.Length - 1)
                throw new UserErrorException($"Optimizer state key '{key}' is not '<parameter name>.<buffer name>'.");
            string buffer = key[(dot + 1)..];
            if (!IsKnownBuffer(buffer))
                throw new UserErrorException($"Optimizer state key '{key}': '{buffer}' is not a buffer of the '{Name}' optimizer.");
            string param = key[..dot];
            buffers[(param, buffer)] = (float[])values.Clone();
            imported.Add(param);
        }
        _buffers.Clear();
        foreach (var kv in buffers) _buffers[kv.Key] = kv.Value;
        _importedParams = imported.Count > 0 ? imported : null;
        StepCount = state.Step;
    }

    /// <summary>Whether <paramref name="buffer"/> is a buffer name this optimizer uses (for validating imports).</summary>
    protected abstract bool IsKnownBuffer(string buffer);
}
