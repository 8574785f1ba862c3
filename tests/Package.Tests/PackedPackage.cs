using System;
using System.IO;
using System.Linq;
using System.Reflection;

namespace TransformerGen.Package.Tests;

/// <summary>
/// Packs src/Package once for the tests of this class into a temporary folder feed, with the build the test
/// project's own build made (<c>dotnet pack --no-build</c>, same configuration), and deletes the folder after.
/// </summary>
public sealed class PackedPackage : IDisposable
{
    public const string Id = "TransformerGen";
    public const string Version = "0.1.0";

    public PackedPackage()
    {
        Root = Directory.CreateTempSubdirectory("tg-package-").FullName;
        Feed = Path.Combine(Root, "feed");
        string project = Path.Combine(RepositoryRoot, "src", "Package", "TransformerGen.Package.csproj");
        // The nuspec goes to the temporary folder too, so two runs at once in one clone do not share a file.
        PackResult = Dotnet.Run(RepositoryRoot, TimeSpan.FromMinutes(3),
            "pack", project, "--no-build", "--no-restore", "-c", Configuration, "-o", Feed, $"-p:NuspecOutputPath={Path.Combine(Root, "nuspec")}{Path.DirectorySeparatorChar}");
        PackagePath = Path.Combine(Feed, $"{Id}.{Version}.nupkg");
    }

    /// <summary>The temporary folder that holds the feed and anything a test writes.</summary>
    public string Root { get; }

    /// <summary>The local folder feed holding the package.</summary>
    public string Feed { get; }

    /// <summary>The .nupkg file.</summary>
    public string PackagePath { get; }

    /// <summary>What <c>dotnet pack</c> printed.</summary>
    public Dotnet.Result PackResult { get; }

    /// <summary>The clone this test assembly was built from.</summary>
    public static string RepositoryRoot => Metadata("RepositoryRoot");

    /// <summary>The configuration this test assembly (and so the package's projects) was built in.</summary>
    public static string Configuration => Metadata("Configuration");

    private static string Metadata(string key) =>
        typeof(PackedPackage).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
        ?? throw new InvalidOperationException($"assembly metadata '{key}' is empty");

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { } // a leftover temporary folder must not fail the run
        catch (UnauthorizedAccessException) { }
    }
}
