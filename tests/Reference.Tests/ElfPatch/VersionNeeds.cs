using System;
using System.Buffers.Binary;
using System.Text;

namespace TransformerGen.ElfPatch;

/// <summary>
/// Finds one version requirement ("this library needs symbol version X of some shared library") in the bytes of a
/// little-endian ELF64 shared library, and marks it weak.
/// </summary>
/// <remarks>
/// The layout is that of the System V ABI (ELF-64 Object File Format 1.5) and of the Linux Standard Base's symbol
/// versioning chapter (<c>Elf64_Verneed</c>, <c>Elf64_Vernaux</c>; also glibc's <c>elf.h</c>):
/// the section of type <c>SHT_GNU_verneed</c> (named <c>.gnu.version_r</c>) holds <c>sh_info</c> Verneed records, one
/// per needed library, each followed (at <c>vn_aux</c>) by <c>vn_cnt</c> Vernaux records, one per needed version;
/// names are offsets into the string table of section <c>sh_link</c> (<c>.dynstr</c>). A Vernaux whose
/// <c>vna_flags</c> has <c>VER_FLG_WEAK</c> is a weak requirement: glibc's loader accepts the library when the version
/// is missing (<c>elf/dl-version.c</c>, <c>match_symbol</c> with <c>weak</c> set) instead of failing to load it.
/// </remarks>
public static class VersionNeeds
{
    /// <summary><c>VER_FLG_WEAK</c>: the version requirement is weak.</summary>
    public const ushort WeakFlag = 0x2;

    private const uint SectionTypeVersionNeeds = 0x6ffffffe; // SHT_GNU_verneed

    /// <summary>Where a Vernaux record is, and its flags.</summary>
    /// <param name="FlagsOffset">File offset of its <c>vna_flags</c> (2 bytes, little-endian).</param>
    /// <param name="Flags">Its <c>vna_flags</c>.</param>
    /// <param name="Library">The needed library it belongs to (<c>vn_file</c>), e.g. <c>libstdc++.so.6</c>.</param>
    public readonly record struct Requirement(long FlagsOffset, ushort Flags, string Library)
    {
        /// <summary>Whether the requirement is already weak.</summary>
        public bool IsWeak => (Flags & WeakFlag) != 0;
    }

    /// <summary>
    /// Returns the requirement of <paramref name="version"/> (e.g. <c>GLIBCXX_3.4.32</c>), or null when the library
    /// asks for no such version. Throws <see cref="FormatException"/> when the bytes are not a little-endian ELF64
    /// file or a record points outside the file.
    /// </summary>
    public static Requirement? Find(ReadOnlySpan<byte> elf, string version)
    {
        // ELF header: e_ident (16 bytes), then e_shoff at 0x28, e_shentsize at 0x3A, e_shnum at 0x3C, e_shstrndx at 0x3E.
        Require(elf.Length >= 64 && elf[0] == 0x7f && elf[1] == (byte)'E' && elf[2] == (byte)'L' && elf[3] == (byte)'F', "not an ELF file");
        Require(elf[4] == 2, "not a 64-bit ELF file (EI_CLASS is not ELFCLASS64)");
        Require(elf[5] == 1, "not a little-endian ELF file (EI_DATA is not ELFDATA2LSB)");
        long sectionHeaders = checked((long)U64(elf, 0x28));
        int sectionHeaderSize = U16(elf, 0x3A), sectionCount = U16(elf, 0x3C), sectionNamesIndex = U16(elf, 0x3E);
        Require(sectionHeaders > 0 && sectionCount > 0, "the file has no section headers");
        Require(sectionHeaderSize >= 64, $"section headers of {sectionHeaderSize} bytes are too small for ELF64");
        Require(sectionHeaders + (long)sectionCount * sectionHeaderSize <= elf.Length, "the section headers run past the end of the file");

        uint hash = ElfHash(version);
        for (int s = 0; s < sectionCount; s++)
        {
            Section section = ReadSection(elf, sectionHeaders, sectionHeaderSize, s);
            if (section.Type != SectionTypeVersionNeeds) continue;
            if (sectionNamesIndex < sectionCount)
            {
                Section names = ReadSection(elf, sectionHeaders, sectionHeaderSize, sectionNamesIndex);
                string name = ReadString(elf, names, section.Name);
                Require(name == ".gnu.version_r", $"the version-needs section is named '{name}', not '.gnu.version_r'");
            }
            Require(section.Link < sectionCount, "the version-needs section links to no string table");
            Section strings = ReadSection(elf, sectionHeaders, sectionHeaderSize, (int)section.Link);

            // Verneed: vn_version (2), vn_cnt (2), vn_file (4), vn_aux (4), vn_next (4).
            long need = section.Offset;
            for (uint n = 0; n < section.Info; n++)
            {
                Require(need >= section.Offset && need + 16 <= section.Offset + section.Size, "a Verneed record lies outside .gnu.version_r");
                int count = U16(elf, need + 2);
                string library = ReadString(elf, strings, U32(elf, need + 4));
                // Vernaux: vna_hash (4), vna_flags (2), vna_other (2), vna_name (4), vna_next (4).
                long aux = need + U32(elf, need + 8);
                for (int a = 0; a < count; a++)
                {
                    Require(aux >= section.Offset && aux + 16 <= section.Offset + section.Size, "a Vernaux record lies outside .gnu.version_r");
                    if (U32(elf, aux) == hash && ReadString(elf, strings, U32(elf, aux + 8)) == version)
                        return new Requirement(aux + 4, U16(elf, aux + 4), library);
                    aux += U32(elf, aux + 12);
                }
                uint next = U32(elf, need + 12);
                if (next == 0) break;
                need += next;
            }
        }
        return null;
    }

    /// <summary>Sets <see cref="WeakFlag"/> in the requirement's <c>vna_flags</c> (a no-op when it is set already).</summary>
    public static void MakeWeak(Span<byte> elf, Requirement requirement)
    {
        ushort flags = U16(elf, requirement.FlagsOffset);
        BinaryPrimitives.WriteUInt16LittleEndian(elf.Slice(checked((int)requirement.FlagsOffset), 2), (ushort)(flags | WeakFlag));
    }

    /// <summary>The System V ABI's ELF hash (<c>elf_hash</c>), which <c>vna_hash</c> holds for the version name.</summary>
    public static uint ElfHash(string name)
    {
        uint h = 0;
        foreach (byte c in Encoding.ASCII.GetBytes(name))
        {
            h = (h << 4) + c;
            uint g = h & 0xf0000000;
            if (g != 0) h ^= g >> 24;
            h &= ~g;
        }
        return h;
    }

    private readonly record struct Section(uint Name, uint Type, long Offset, long Size, uint Link, uint Info);

    // Elf64_Shdr: sh_name (4) @0, sh_type (4) @4, sh_offset (8) @24, sh_size (8) @32, sh_link (4) @40, sh_info (4) @44.
    private static Section ReadSection(ReadOnlySpan<byte> elf, long table, int entrySize, int index)
    {
        long at = table + (long)index * entrySize;
        var section = new Section(U32(elf, at), U32(elf, at + 4), checked((long)U64(elf, at + 24)), checked((long)U64(elf, at + 32)), U32(elf, at + 40), U32(elf, at + 44));
        Require(section.Type == 8 /* SHT_NOBITS */ || section.Offset + section.Size <= elf.Length, $"section {index} runs past the end of the file");
        return section;
    }

    private static string ReadString(ReadOnlySpan<byte> elf, Section table, uint offset)
    {
        Require(offset < table.Size, "a name lies outside its string table");
        ReadOnlySpan<byte> rest = elf.Slice(checked((int)(table.Offset + offset)), checked((int)(table.Size - offset)));
        int end = rest.IndexOf((byte)0);
        Require(end >= 0, "a name in the string table is not terminated");
        return Encoding.ASCII.GetString(rest[..end]);
    }

    private static ushort U16(ReadOnlySpan<byte> elf, long at) => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(elf, at, 2));
    private static uint U32(ReadOnlySpan<byte> elf, long at) => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(elf, at, 4));
    private static ulong U64(ReadOnlySpan<byte> elf, long at) => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(elf, at, 8));

    private static ReadOnlySpan<byte> Bytes(ReadOnlySpan<byte> elf, long at, int count)
    {
        Require(at >= 0 && at + count <= elf.Length, $"offset {at} lies outside the file");
        return elf.Slice((int)at, count);
    }

    private static void Require(bool condition, string problem)
    {
        if (!condition) throw new FormatException(problem);
    }
}
