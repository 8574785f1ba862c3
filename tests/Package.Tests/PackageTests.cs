using System;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;
using Xunit.Abstractions;

namespace TransformerGen.Package.Tests;

/// <summary>
/// The NuGet package as a user gets it: its layout, and small programs built against it from a local folder
/// feed (a PackageReference, not project references): one trains a model, generates from it and saves it; one
/// builds that checkpoint in at compile time and generates the same tokens; and a declaration the checkpoint
/// does not fit fails to compile.
/// </summary>
public sealed class PackageTests(PackedPackage package, ITestOutputHelper output) : IClassFixture<PackedPackage>
{
    [Fact]
    public void Pack_gives_one_package_with_the_generator_as_an_analyzer_and_the_libraries_for_net10()
    {
        output.WriteLine($"dotnet pack: {package.PackResult.Elapsed.TotalSeconds:F1} s");
        Assert.True(package.PackResult.ExitCode == 0, package.PackResult.Output);
        Assert.DoesNotContain("warning", package.PackResult.Output, StringComparison.OrdinalIgnoreCase);
        Assert.Equal([Path.GetFileName(package.PackagePath)], Directory.GetFiles(package.Feed).Select(Path.GetFileName));

        using ZipArchive zip = ZipFile.OpenRead(package.PackagePath);
        string[] files = zip.Entries.Select(e => e.FullName)
            .Where(name => !name.StartsWith("_rels/", StringComparison.Ordinal) && !name.StartsWith("package/", StringComparison.Ordinal) && name != "[Content_Types].xml")
            .Order(StringComparer.Ordinal).ToArray();
        foreach (string file in files) output.WriteLine(file);
        Assert.Equal(
        [
            "LICENSE",
            "README.md",
            "TransformerGen.nuspec",
            "analyzers/dotnet/cs/TransformerGen.Generator.dll",
            "build/TransformerGen.targets",
            "lib/net10.0/TransformerGen.Attributes.dll",
            "lib/net10.0/TransformerGen.Attributes.xml",
            "lib/net10.0/TransformerGen.Runtime.dll",
            "lib/net10.0/TransformerGen.Runtime.xml",
        ], files);

        XDocument nuspec;
        using (Stream stream = zip.GetEntry("TransformerGen.nuspec")!.Open()) nuspec = XDocument.Load(stream);
        XNamespace ns = nuspec.Root!.Name.Namespace;
        XElement metadata = nuspec.Root.Element(ns + "metadata")!;
        Assert.Equal(PackedPackage.Id, metadata.Element(ns + "id")!.Value);
        Assert.Equal(PackedPackage.Version, metadata.Element(ns + "version")!.Value);
        Assert.Equal("MIT", metadata.Element(ns + "license")!.Value);
        Assert.Equal("README.md", metadata.Element(ns + "readme")!.Value);
        XElement group = Assert.Single(metadata.Element(ns + "dependencies")!.Elements(ns + "group"));
        Assert.Equal("net10.0", group.Attribute("targetFramework")!.Value);
        Assert.Equal(["Google.Protobuf", "OnnxSharp", "System.Numerics.Tensors"],
            group.Elements(ns + "dependency").Select(d => d.Attribute("id")!.Value).Order(StringComparer.Ordinal));
    }

    private const string TrainingProgram = """
        using System;
        using System.Globalization;
        using TransformerGen;

        // Learns to continue 0, 1, …, 11, 0, 1, …: each next token is predictable from the one before.
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        var model = new Counter(seed: 1);
        var optimizer = new AdamW(model, learningRate: 1e-2f, weightDecay: 0f);
        var tokens = new int[Counter.TokensPerStep];
        var targets = new int[Counter.TokensPerStep];
        for (int b = 0; b < Counter.Batch; b++)
        {
            for (int t = 0; t < Counter.SeqLen; t++)
            {
                tokens[b * Counter.SeqLen + t] = (3 * b + t) % Counter.Vocab;
                targets[b * Counter.SeqLen + t] = (3 * b + t + 1) % Counter.Vocab;
            }
        }
        for (int step = 1; step <= 20; step++)
            Console.WriteLine($"step {step} loss {model.TrainStep(tokens, targets, optimizer):F4}");

        var generated = new int[8];
        model.Generate([3, 4, 5, 6], generated, new Sampler(seed: 2, Counter.Vocab) { Temperature = 0f });
        Console.WriteLine($"generated {string.Join(' ', generated)}");
        model.Save(args[0]);

        [TransformerModel(Vocab = 12, DModel = 32, Heads = 4, Layers = 2, DFF = 64, SeqLen = 16, Batch = 4)]
        public partial class Counter { }
        """;

    /// <summary>The same model with the trained checkpoint built in at compile time; DFF is a placeholder.</summary>
    private const string BuiltInProgram = """
        using System;
        using TransformerGen;

        var model = Counter.FromBuiltInWeights();
        var generated = new int[8];
        model.Generate([3, 4, 5, 6], generated, new Sampler(seed: 2, Counter.Vocab) { Temperature = 0f });
        Console.WriteLine($"generated {string.Join(' ', generated)}");

        [TransformerModel(Vocab = 12, DModel = 32, Heads = 4, Layers = 2, DFF = {DFF}, SeqLen = 16, Batch = 4, Weights = "counter.safetensors")]
        public partial class Counter { }
        """;

    /// <summary>
    /// Writes a console project that references the package (and nothing of this repository) into
    /// <paramref name="name"/> under the temporary folder: its own nuget.config with the folder feed, a fresh
    /// package cache shared by the consumers of this test, and empty Directory.Build.* files so MSBuild imports
    /// nothing found above the temporary folder.
    /// </summary>
    private string WriteConsumer(string name, string program, string items = "")
    {
        string folder = Path.Combine(package.Root, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(folder, "Directory.Build.targets"), "<Project />");
        File.WriteAllText(Path.Combine(folder, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{package.Feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="local"><package pattern="{PackedPackage.Id}" /></packageSource>
                <packageSource key="nuget.org"><package pattern="*" /></packageSource>
              </packageSourceMapping>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(folder, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <RestorePackagesPath>{Packages}</RestorePackagesPath>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="{PackedPackage.Id}" Version="{PackedPackage.Version}" />
                {items}
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(folder, "Program.cs"), program);
        return folder;
    }

    /// <summary>A package cache of this run only, so a stale 0.1.0 from elsewhere is never used.</summary>
    private string Packages => Path.Combine(package.Root, "packages");

    private Dotnet.Result Build(string folder)
    {
        Dotnet.Result build = Dotnet.Run(folder, TimeSpan.FromMinutes(4), "build");
        output.WriteLine($"dotnet build {Path.GetFileName(folder)}: {build.Elapsed.TotalSeconds:F1} s");
        return build;
    }

    private Dotnet.Result Run(string folder, params string[] arguments)
    {
        Dotnet.Result run = Dotnet.Run(folder, TimeSpan.FromMinutes(2), ["run", "--no-build", "--", .. arguments]);
        output.WriteLine($"dotnet run {Path.GetFileName(folder)}: {run.Elapsed.TotalSeconds:F1} s");
        output.WriteLine(run.Output);
        Assert.True(run.ExitCode == 0, run.Output);
        return run;
    }

    [Fact]
    public void Programs_built_against_the_package_from_a_folder_feed_train_and_build_the_checkpoint_in()
    {
        Assert.True(package.PackResult.ExitCode == 0, package.PackResult.Output);

        // 1. Train, generate, save.
        string training = WriteConsumer("training", TrainingProgram);
        Dotnet.Result build = Build(training);
        Assert.True(build.ExitCode == 0, build.Output);
        Assert.Contains("0 Warning(s)", build.Output);

        // The package came from the folder feed, into the fresh cache.
        string restored = Path.Combine(Packages, PackedPackage.Id.ToLowerInvariant(), PackedPackage.Version);
        using (JsonDocument info = JsonDocument.Parse(File.ReadAllText(Path.Combine(restored, ".nupkg.metadata"))))
            Assert.Equal(Path.TrimEndingDirectorySeparator(package.Feed), Path.TrimEndingDirectorySeparator(info.RootElement.GetProperty("source").GetString()!));

        string checkpoint = Path.Combine(package.Root, "counter.safetensors");
        Dotnet.Result run = Run(training, checkpoint);
        float[] losses = Regex.Matches(run.Output, @"^step \d+ loss (\S+)$", RegexOptions.Multiline)
            .Select(m => float.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(20, losses.Length);
        Assert.All(losses, loss => Assert.True(float.IsFinite(loss), run.Output));
        Assert.InRange(losses[0], MathF.Log(12) - 0.3f, MathF.Log(12) + 0.3f); // uniform at the start
        Assert.True(losses[^1] < 0.5f * losses[0], $"the loss did not halve in 20 steps:\n{run.Output}");
        // Greedy decoding with the KV cache continues 3 4 5 6 (seen after 20 steps: loss 2.49 → 0.58).
        const string Continuation = "generated 7 8 9 10 11 0 1 2";
        Assert.Contains(Continuation, run.Output);

        // 2. The checkpoint built in at compile time, through the package's build/TransformerGen.targets.
        string item = $"<TransformerWeights Include=\"{checkpoint}\" />";
        string builtIn = WriteConsumer("builtin", BuiltInProgram.Replace("{DFF}", "64"), item);
        build = Build(builtIn);
        Assert.True(build.ExitCode == 0, build.Output);
        Assert.Contains(Continuation, Run(builtIn).Output);

        // 3. A declaration the checkpoint does not fit is a compile error at the attribute.
        File.WriteAllText(Path.Combine(builtIn, "Program.cs"), BuiltInProgram.Replace("{DFF}", "48"));
        build = Build(builtIn);
        Assert.NotEqual(0, build.ExitCode);
        Assert.Contains("error TG0034", build.Output);
        Assert.Contains("decoder.layers.0.linear1.weight", build.Output);
    }
}
