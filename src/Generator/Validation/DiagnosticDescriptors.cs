using Microsoft.CodeAnalysis;

namespace TransformerGen.Generator
{
    /// <summary>The catalogue of every diagnostic the generator reports. Ids are stable; AnalyzerReleases.*.md records them.</summary>
    internal static class DiagnosticDescriptors
    {
        private const string Category = "TransformerGen";

        private static DiagnosticDescriptor Error(string id, string title, string message) =>
            new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

        public static readonly DiagnosticDescriptor NotPartial = Error("TG0001",
            "A [TransformerModel] class must be partial",
            "Class '{0}' has [TransformerModel] but is not partial: declare it 'partial class {0}' so the generated half can join it");

        public static readonly DiagnosticDescriptor NonPositiveSize = Error("TG0002",
            "A model size must be positive",
            "{0} is {1}, but it must be a positive integer{2}");

        public static readonly DiagnosticDescriptor HeadsDoNotDivideDModel = Error("TG0003",
            "DModel must be divisible by Heads",
            "DModel = {0} is not divisible by Heads = {1}; head counts that divide {0}: {2}");

        public static readonly DiagnosticDescriptor OddRotaryHeadSize = Error("TG0004",
            "Rotary positions need an even head size",
            "Rotary positions rotate pairs of channels, but the head size DModel / Heads = {0} / {1} = {2} is odd; choose Heads so that the head size is even ({3}), or another Positional");

        public static readonly DiagnosticDescriptor ProbabilityOutOfRange = Error("TG0005",
            "A probability must lie in [0, 1)",
            "{0} = {1} is outside [0, 1)");

        public static readonly DiagnosticDescriptor GenericType = Error("TG0006",
            "A [TransformerModel] class cannot be generic or nested in a generic type",
            "Class '{0}' is generic or nested in a generic type; a model's sizes are fixed, so declare it as a non-generic class");

        public static readonly DiagnosticDescriptor HasBaseClass = Error("TG0007",
            "A [TransformerModel] class cannot declare a base class",
            "Class '{0}' derives from '{1}', but the generated half derives from TransformerGen.TransformerModel; remove the base class (interfaces are fine)");

        public static readonly DiagnosticDescriptor TooLarge = Error("TG0008",
            "The model does not fit 32-bit indexing",
            "{0} needs {1} floats, more than the 2,147,483,647 a span can index; make the model or the batch smaller");

        public static readonly DiagnosticDescriptor WrongTypeKind = Error("TG0009",
            "[TransformerModel] goes on a plain class",
            "'{0}' is a {1}; [TransformerModel] needs a non-static, non-abstract class (not a struct or record)");

        public static readonly DiagnosticDescriptor MemberCollision = Error("TG0010",
            "A member collides with a generated member",
            "'{0}' declares a member named '{1}', which the generated model defines; rename it");

        public static readonly DiagnosticDescriptor TooManyLayers = Error("TG0011",
            "Too many layers to unroll",
            "{0} = {1} exceeds {2}, the most layers the generator unrolls into code");

        public static readonly DiagnosticDescriptor UnknownOption = Error("TG0012",
            "Unknown option value",
            "{0} = {1} is not a defined value; use one of {2}");

        public static readonly DiagnosticDescriptor ContainingTypeNotPartial = Error("TG0013",
            "Types containing a [TransformerModel] class must be partial",
            "Class '{0}' is nested in a type that is not partial; make every containing type partial");

        public static readonly DiagnosticDescriptor AppliedTwice = Error("TG0014",
            "[TransformerModel] is applied more than once",
            "Class '{0}' carries [TransformerModel] {1} times; a class is one model, so keep one attribute");

        public static readonly DiagnosticDescriptor OptionNotForArchitecture = Error("TG0015",
            "An option does not apply to this architecture",
            "{0} applies to {1} models only, but this model is {2}; remove it or change Architecture");

        public static readonly DiagnosticDescriptor TokenIdOutOfRange = Error("TG0016",
            "A special token id is outside its vocabulary",
            "{0} = {1} is outside [0, {2}), the {3} vocabulary");

        public static readonly DiagnosticDescriptor MissingOption = Error("TG0017",
            "An option the architecture needs is missing",
            "{0} models need {1}: {2}");

        public static readonly DiagnosticDescriptor WeightsNotFound = Error("TG0030",
            "The weights file is not part of the build",
            "Weights = \"{0}\" names no checkpoint of this project; add <TransformerWeights Include=\"…/{0}\" /> (checkpoints found: {1})");

        public static readonly DiagnosticDescriptor WeightsUnreadable = Error("TG0031",
            "The weights file's header cannot be read",
            "{0}: {1}");

        public static readonly DiagnosticDescriptor WeightsMissingTensor = Error("TG0032",
            "The weights file lacks a tensor of the model",
            "{0} has no tensor '{1}' {2}, which {3} needs");

        public static readonly DiagnosticDescriptor WeightsUnexpectedTensor = Error("TG0033",
            "The weights file has a tensor the model does not have",
            "{0} has a tensor '{1}' {2} that {3} does not have");

        public static readonly DiagnosticDescriptor WeightsShapeMismatch = Error("TG0034",
            "A tensor of the weights file has the wrong shape",
            "'{1}' is {2} in {0}, but {4} needs {3}");

        public static readonly DiagnosticDescriptor WeightsDtype = Error("TG0035",
            "A tensor of the weights file has a dtype that cannot be loaded",
            "'{1}' in {0} is {2}; F32, F16 and BF16 can be loaded");

        public static readonly DiagnosticDescriptor WeightsInt8Scales = Error("TG0036",
            "An 8-bit tensor of the weights file lacks its scales",
            "'{1}' in {0} is I8, which needs its block scales beside it: an F16 tensor '{1}_scale' [{2}, {3}] ({4})");

        public static readonly DiagnosticDescriptor WeightsTooLarge = Error("TG0046",
            "The weights file is too large to build into an assembly",
            "{0} holds {1} bytes, and an assembly can hold less than {2} (its code, metadata and resources share one section of under 2 GiB); load the weights at run time ({3}.ForInference(path)), or build in a smaller file: an instance's Save(path, WeightType.Int8) writes its matrices in 8 bits, about 27% of their fp32 bytes");

        public static readonly DiagnosticDescriptor ConfigNotFound = Error("TG0040",
            "The config file is not part of the build",
            "Config = \"{0}\" names no file of this project; add <TransformerConfig Include=\"{0}\" /> (config files found: {1})");

        public static readonly DiagnosticDescriptor ConfigUnreadable = Error("TG0041",
            "The config file cannot be read",
            "{0} is not a JSON object: {1}");

        public static readonly DiagnosticDescriptor ConfigUnsupported = Error("TG0042",
            "The config describes something the compiler cannot build",
            "{0}: \"{1}\": {2} cannot be compiled: {3}");

        public static readonly DiagnosticDescriptor ConfigContradiction = Error("TG0043",
            "An attribute argument contradicts the config",
            "{0} = {1} contradicts {2}'s \"{3}\": {4}; leave {0} out to take the config's value");

        public static readonly DiagnosticDescriptor SegmentOption = Error("TG0045",
            "The parameter segment limit is not a valid number of floats",
            "The project's TransformerGenParameterSegmentFloats is '{0}'; a whole number of floats from {1} to {2} is expected (leave it out for the largest)");

        public static readonly DiagnosticDescriptor ConfigMissingKey = Error("TG0044",
            "The config lacks a key the architecture needs",
            "{0} has no \"{1}\", which a {2} model needs");

        public static readonly DiagnosticDescriptor ForwardLengthMismatch = Error("TG0020",
            "Forward is called with the wrong number of token ids",
            "{0}.Forward needs {3} = {4} ids in '{1}', but this argument has {2}");

        public static readonly DiagnosticDescriptor AppendTooLong = Error("TG0021",
            "Append is called with more positions than the model holds",
            "{0}.Append takes 1 to {2} = {3} tokens at a time, but this argument has {1}");

        public static readonly DiagnosticDescriptor ModelSummary = new("TG1000",
            "Model summary",
            "{0}: {1} parameters ({2} bytes of weights), training workspace {3} bytes, inference workspace {4} bytes, {5} FLOPs per token forward",
            Category, DiagnosticSeverity.Info, isEnabledByDefault: true);

        public static readonly DiagnosticDescriptor InternalError = Error("TG9999",
            "The generator failed unexpectedly",
            "Transformer.Gen failed while {0} for '{1}': {2}. This is a bug in the generator; please report it with the declaration.");
    }
}
