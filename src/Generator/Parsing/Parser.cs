using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace TransformerGen.Generator
{
    /// <summary>Stage 1: reads one <c>[TransformerModel]</c> declaration into a <see cref="ModelSpec"/>.</summary>
    internal static class Parser
    {
        public const string AttributeFullName = "TransformerGen.TransformerModelAttribute";

        public static ModelSpec Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
        {
            var symbol = (INamedTypeSymbol)context.TargetSymbol;
            var node = (TypeDeclarationSyntax)context.TargetNode;
            AttributeData attribute = context.Attributes[0];
            var attributeSyntax = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken) as AttributeSyntax;

            // Defaults mirror TransformerModelAttribute's property initializers.
            var architecture = new Argument<int>(EnumValues.DecoderOnly, null);
            Argument<int> vocab = default, dModel = default, heads = default, layers = default, dff = default, seqLen = default;
            var batch = new Argument<int>(1, null);
            var positional = new Argument<int>(EnumValues.Sinusoidal, null);
            var norm = new Argument<int>(EnumValues.PreNorm, null);
            var activation = new Argument<int>(EnumValues.Gelu, null);
            Argument<float> dropout = default, labelSmoothing = default;
            var tied = new Argument<bool>(true, null);
            Argument<int> encoderLayers = default, decoderLayers = default, targetVocab = default, targetSeqLen = default;
            var padToken = new Argument<int>(-1, null);
            var bosToken = new Argument<int>(-1, null);
            var eosToken = new Argument<int>(-1, null);
            Argument<bool> scaleEmbeddings = default;
            Argument<int> window = default, classes = default;
            var head = new Argument<int>(EnumValues.Classification, null);
            var pooling = new Argument<int>(EnumValues.FirstToken, null);
            var weightType = new Argument<int>(EnumValues.Float32, null);
            var attentionKernel = new Argument<int>(EnumValues.AutoAttention, null);
            Argument<int> sequences = default;
            Argument<bool> recompute = default;
            Argument<string?> weights = default, config = default;

            foreach (KeyValuePair<string, TypedConstant> named in attribute.NamedArguments)
            {
                cancellationToken.ThrowIfCancellationRequested();
                TypedConstant value = named.Value;
                if (value.Kind == TypedConstantKind.Error || value.Value is null) continue; // the compiler reports it
                LocationInfo? where = ArgumentLocation(attributeSyntax, named.Key);
                switch (named.Key)
                {
                    case "Architecture": architecture = Int(value, where); break;
                    case "Vocab": vocab = Int(value, where); break;
                    case "DModel": dModel = Int(value, where); break;
                    case "Heads": heads = Int(value, where); break;
                    case "Layers": layers = Int(value, where); break;
                    case "DFF": dff = Int(value, where); break;
                    case "SeqLen": seqLen = Int(value, where); break;
                    case "Batch": batch = Int(value, where); break;
                    case "Positional": positional = Int(value, where); break;
                    case "Norm": norm = Int(value, where); break;
                    case "Activation": activation = Int(value, where); break;
                    case "Dropout": dropout = Float(value, where); break;
                    case "LabelSmoothing": labelSmoothing = Float(value, where); break;
                    case "TiedEmbeddings": tied = new Argument<bool>((bool)value.Value!, where); break;
                    case "EncoderLayers": encoderLayers = Int(value, where); break;
                    case "DecoderLayers": decoderLayers = Int(value, where); break;
                    case "TargetVocab": targetVocab = Int(value, where); break;
                    case "TargetSeqLen": targetSeqLen = Int(value, where); break;
                    case "PadToken": padToken = Int(value, where); break;
                    case "BosToken": bosToken = Int(value, where); break;
                    case "EosToken": eosToken = Int(value, where); break;
                    case "ScaleEmbeddings": scaleEmbeddings = new Argument<bool>((bool)value.Value!, where); break;
                    case "AttentionWindow": window = Int(value, where); break;
                    case "Classes": classes = Int(value, where); break;
                    case "Head": head = Int(value, where); break;
                    case "Pooling": pooling = Int(value, where); break;
                    case "WeightType": weightType = Int(value, where); break;
                    case "AttentionKernel": attentionKernel = Int(value, where); break;
                    case "Sequences": sequences = Int(value, where); break;
                    case "RecomputeActivations": recompute = new Argument<bool>((bool)value.Value!, where); break;
                    case "Weights": weights = new Argument<string?>((string)value.Value!, where); break;
                    case "Config": config = new Argument<string?>((string)value.Value!, where); break;
                }
            }

            // Sentence embeddings pool by the mean unless the declaration names a pooling: sentence-transformers' most
            // common setting (all-MiniLM, e5, gte); [CLS]-pooled models (bge, arctic-embed) declare Pooling.FirstToken.
            if (head.Value == EnumValues.SentenceEmbedding && !pooling.IsSet) pooling = new Argument<int>(EnumValues.MeanPooling, null);

            return new ModelSpec(
                ReadType(symbol, node, System.Math.Max(layers.Value, System.Math.Max(encoderLayers.Value, decoderLayers.Value)), cancellationToken),
                LocationInfo.From(attributeSyntax) ?? LocationInfo.From(node.Identifier.GetLocation()),
                architecture, vocab, dModel, heads, layers, dff, seqLen, batch, positional, norm, activation,
                dropout, labelSmoothing, tied, encoderLayers, decoderLayers, targetVocab, targetSeqLen,
                padToken, bosToken, eosToken, scaleEmbeddings, window, classes, head, pooling, weights) { Config = config, WeightType = weightType, AttentionKernel = attentionKernel, Sequences = sequences, RecomputeActivations = recompute };
        }

        private static Argument<int> Int(TypedConstant value, LocationInfo? where) =>
            new(System.Convert.ToInt32(value.Value, System.Globalization.CultureInfo.InvariantCulture), where);

        private static Argument<float> Float(TypedConstant value, LocationInfo? where) =>
            new(System.Convert.ToSingle(value.Value, System.Globalization.CultureInfo.InvariantCulture), where);

        /// <summary>The location of <c>Name = value</c> inside the attribute, so a diagnostic underlines exactly that argument.</summary>
        private static LocationInfo? ArgumentLocation(AttributeSyntax? attribute, string name)
        {
            if (attribute?.ArgumentList is null) return null;
            foreach (AttributeArgumentSyntax argument in attribute.ArgumentList.Arguments)
                if (argument.NameEquals?.Name.Identifier.ValueText == name) return LocationInfo.From(argument);
            return null;
        }

        private static TypeShape ReadType(INamedTypeSymbol symbol, TypeDeclarationSyntax node, int layers, CancellationToken cancellationToken)
        {
            var containing = new List<string>();
            bool inGeneric = false, containingPartial = true;
            for (INamedTypeSymbol? outer = symbol.ContainingType; outer is not null; outer = outer.ContainingType)
            {
                containing.Insert(0, Keyword(outer) + " " + outer.Name);
                inGeneric |= outer.IsGenericType;
                containingPartial &= outer.DeclaringSyntaxReferences.All(r =>
                    r.GetSyntax(cancellationToken) is TypeDeclarationSyntax t && t.Modifiers.Any(SyntaxKind.PartialKeyword));
            }

            bool isPartial = node.Modifiers.Any(SyntaxKind.PartialKeyword);
            string? baseType = symbol.TypeKind == TypeKind.Class && symbol.BaseType is { SpecialType: not SpecialType.System_Object } b
                ? b.ToDisplayString()
                : null;

            // Only members whose names collide with generated ones are kept: the locations of the others would
            // change with every edit of the class body and defeat caching for nothing.
            var members = new List<MemberName>();
            foreach (ISymbol member in symbol.GetMembers())
            {
                if (member.IsImplicitlyDeclared || member is IMethodSymbol { MethodKind: MethodKind.Constructor or MethodKind.StaticConstructor })
                    continue;
                if (member is IMethodSymbol { AssociatedSymbol: not null }) continue; // accessors: the property is listed
                if (!GeneratedNames.IsGenerated(member.Name, layers)) continue;
                Location? where = member.Locations.FirstOrDefault(l => l.IsInSource);
                if (where is null) continue;
                members.Add(new MemberName(member.Name, LocationInfo.From(where)));
            }
            members.Sort((x, y) => string.CompareOrdinal(x.Name, y.Name));

            int attributeCount = symbol.GetAttributes().Count(a => a.AttributeClass?.ToDisplayString() == AttributeFullName);

            return new TypeShape(
                symbol.Name,
                symbol.ContainingNamespace is { IsGlobalNamespace: false } ns ? ns.ToDisplayString() : null,
                new EquatableArray<string>(containing),
                LocationInfo.From(node.Identifier.GetLocation()),
                Keyword(symbol),
                isPartial,
                symbol.IsStatic,
                symbol.IsAbstract,
                symbol.IsGenericType,
                inGeneric,
                containingPartial,
                baseType,
                attributeCount,
                new EquatableArray<MemberName>(members));
        }

        private static string Keyword(INamedTypeSymbol type) => type switch
        {
            { IsRecord: true, TypeKind: TypeKind.Struct } => "record struct",
            { IsRecord: true } => "record",
            { TypeKind: TypeKind.Struct } => "struct",
            { TypeKind: TypeKind.Interface } => "interface",
            _ => "class",
        };
    }
}
