using System;
using System.IO;
using System.Runtime.InteropServices;
using TransformerGen.ElfPatch;

// ElfPatch <library>: makes the given copy of libLibTorchSharp.so load where the system's libstdc++ is older than
// GCC 13's (Debian 12 ships GCC 12's). The library asks for symbol version GLIBCXX_3.4.32 for one symbol only,
// std::ios_base_library_init, a link-time marker that is never called; marking that version requirement weak lets
// the loader accept the library. Nothing is changed when the library loads as it is, when it asks for no such
// version, or when the requirement is weak already (so running it twice is the same as running it once).
// The patched bytes are written to a new file that is then renamed over the old one: a hard link to the NuGet
// package's copy (CreateHardLinksForCopyLocalIfPossible) is replaced, never written through.

const string Version = "GLIBCXX_3.4.32";
if (args.Length != 1)
{
    Console.Error.WriteLine("usage: ElfPatch <path to libLibTorchSharp.so>");
    return 2;
}
string path = Path.GetFullPath(args[0]);
try
{
    byte[] bytes = File.ReadAllBytes(path);
    VersionNeeds.Requirement? found = VersionNeeds.Find(bytes, Version);
    if (found is not { } requirement)
    {
        Console.WriteLine($"ElfPatch: {path} asks for no {Version}; unchanged.");
        return 0;
    }
    if (requirement.IsWeak)
    {
        Console.WriteLine($"ElfPatch: {path}: {Version} of {requirement.Library} is weak already; unchanged.");
        return 0;
    }
    string? failure = TryLoad(path);
    if (failure is null)
    {
        Console.WriteLine($"ElfPatch: {path} loads as it is; unchanged.");
        return 0;
    }
    if (!failure.Contains(Version, StringComparison.Ordinal))
    {
        Console.Error.WriteLine($"ElfPatch: error: {path} does not load, and not because of {Version} (so weakening it would not help): {failure}");
        return 1;
    }

    VersionNeeds.MakeWeak(bytes, requirement);
    string temporary = path + ".elfpatch";
    File.WriteAllBytes(temporary, bytes);
    if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temporary, File.GetUnixFileMode(path));
    // The copy keeps the package file's time, so the next build's copy step (SkipUnchangedFiles: same size and
    // time) leaves the patched file alone instead of copying the original over it again.
    File.SetLastWriteTimeUtc(temporary, File.GetLastWriteTimeUtc(path));
    File.Move(temporary, path, overwrite: true);

    failure = TryLoad(path);
    if (failure is not null)
    {
        Console.Error.WriteLine($"ElfPatch: error: {path} still does not load after marking {Version} weak: {failure}");
        return 1;
    }
    Console.WriteLine($"ElfPatch: {path} did not load ({Version} of {requirement.Library} is missing); marked that requirement weak (vna_flags at file offset 0x{requirement.FlagsOffset:x}), and it loads now.");
    return 0;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
{
    Console.Error.WriteLine($"ElfPatch: error: {path}: {e.Message}");
    return 1;
}

// Loads the library (and, through its RUNPATH $ORIGIN, libtorch beside it) in this short-lived process; returns
// null on success, else the loader's message.
static string? TryLoad(string path)
{
    try
    {
        NativeLibrary.Load(path);
        return null;
    }
    catch (DllNotFoundException e)
    {
        return e.Message;
    }
}
