//! Tokens to [`NetworkDef`]. The body is split at top-level commas first, so a
//! malformed entry is reported and the parser goes on with the next one.

use crate::ast::{Arg, Args, Block, Item, LayerDef, NetworkDef, Role, ShapeLit, SizeLit, Value};
use crate::ctxt::Ctxt;
use crate::model::Size;
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{braced, bracketed, parenthesized, Attribute, Ident, Lit, Token, Visibility};

/// Parses the whole macro input; `None` if even the `struct Name { .. }` frame is broken.
pub fn parse(input: TokenStream, cx: &Ctxt) -> Option<NetworkDef> {
    // Before anything recurses over the tokens.
    if !crate::nesting::within_limits(&input, cx) {
        return None;
    }
    let frame = |input: ParseStream| -> syn::Result<_> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        input
            .parse::<Token![struct]>()
            .map_err(|e| syn::Error::new(e.span(), "expected `struct Name { input: [..], layers.. }`"))?;
        let name: Ident = input.parse()?;
        let generics: syn::Generics = input.parse()?;
        if input.peek(Token![where]) {
            let clause: syn::WhereClause = input.parse()?;
            return Err(syn::Error::new_spanned(clause, "a network takes no `where` clause"));
        }
        if !input.peek(syn::token::Brace) {
            return Err(input.error("expected `{ input: [..], layers.. }` after the network's name"));
        }
        let body;
        braced!(body in input);
        let body: TokenStream = body.parse()?;
        if !input.is_empty() {
            return Err(input.error(
                "unexpected tokens after the network's `{ .. }`; declare one network per `network!`",
            ));
        }
        Ok((attrs, vis, name, generics, body))
    };
    let (attrs, vis, name, generics, body) = match parse_spanned(input, frame) {
        Ok(parts) => parts,
        Err(e) => {
            cx.syn_error(e);
            return None;
        }
    };
    // Every const parameter resolves as a size, even a refused one, so that
    // its uses are not reported again.
    let names: Vec<Ident> = generics.const_params().map(|p| p.ident.clone()).collect();
    let generics = size_params(generics, cx);
    let items = parse_items(body, &names, cx);
    Some(NetworkDef { attrs, vis, name, generics, items })
}

/// The network's generic parameters, which may only be sizes: `const HIDDEN: usize`
/// (with or without a default). The scalar type is a parameter of every network already.
fn size_params(generics: syn::Generics, cx: &Ctxt) -> Vec<syn::ConstParam> {
    let mut params = Vec::new();
    for param in generics.params {
        match param {
            syn::GenericParam::Const(c) if c.ty != syn::parse_quote!(usize) => cx.error_spanned_by(
                &c.ty,
                format!("a size parameter has type `usize`: write `const {}: usize`", c.ident),
            ),
            syn::GenericParam::Const(c) if c.ident == "T" => cx.error_spanned_by(
                &c.ident,
                "`T` names the network's scalar type (`Net<.., f64>`); choose another name for this size",
            ),
            syn::GenericParam::Const(c) => params.push(c),
            syn::GenericParam::Type(t) => cx.error_spanned_by(
                &t,
                "a network is generic over sizes only (`const HIDDEN: usize`); its scalar type \
                 is a parameter already (`Net<f64>`)",
            ),
            syn::GenericParam::Lifetime(l) => {
                cx.error_spanned_by(&l, "a network takes no lifetime parameters; only `const N: usize` sizes")
            }
        }
    }
    params
}

/// The comma-separated entries of a body (the network's or a block's); a
/// broken entry is reported and kept as a placeholder.
fn parse_items(body: TokenStream, generics: &[Ident], cx: &Ctxt) -> Vec<Item> {
    split_top_level_commas(body, cx)
        .into_iter()
        .map(|tokens| {
            let role = role_of(&tokens);
            let span = entry_span(&tokens);
            parse_spanned(tokens, |input: ParseStream| parse_item(input, generics, cx)).unwrap_or_else(|e| {
                // Keep a placeholder so the checker knows something stood here
                // and does not report its absence as further mistakes.
                cx.syn_error(e);
                Item::Invalid(role, span)
            })
        })
        .collect()
}

/// Runs `parser` over `tokens` so that an error at their end points at their
/// last token: syn reports the end of a whole input at the macro's call site
/// but the end of a group at its closing bracket, so the tokens are parsed as
/// the contents of a group spanned on their last token.
fn parse_spanned<T>(
    tokens: TokenStream,
    parser: impl FnOnce(ParseStream) -> syn::Result<T>,
) -> syn::Result<T> {
    let last = match tokens.clone().into_iter().last() {
        Some(TokenTree::Group(g)) => g.span_close(),
        Some(last) => last.span(),
        None => return parser.parse2(tokens),
    };
    let mut group = proc_macro2::Group::new(Delimiter::Bracket, tokens);
    group.set_span(last);
    let inside = |input: ParseStream| {
        let content;
        bracketed!(content in input);
        parser(&content)
    };
    inside.parse2(TokenTree::Group(group).into())
}

/// The span of an entry's first token (an entry is never empty), so that
/// errors about the entry as a whole point into it.
fn entry_span(tokens: &TokenStream) -> proc_macro2::Span {
    tokens.clone().into_iter().next().map_or_else(proc_macro2::Span::call_site, |t| t.span())
}

/// Splits a body into entries at commas that are not inside brackets.
/// A trailing comma is fine; an empty entry (`,,`) is an error.
fn split_top_level_commas(body: TokenStream, cx: &Ctxt) -> Vec<TokenStream> {
    let mut items = Vec::new();
    let mut current: Vec<TokenTree> = Vec::new();
    // Commas inside a nested network's generic arguments (`Encoder<64, 8>`)
    // do not end an entry; the `>` of `=>` and `->` closes nothing.
    let mut angle_depth = 0usize;
    for tt in body {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == '<' => {
                angle_depth += 1;
                current.push(tt);
            }
            TokenTree::Punct(p) if p.as_char() == '>' => {
                let arrow = matches!(current.last(), Some(TokenTree::Punct(q))
                    if q.spacing() == proc_macro2::Spacing::Joint && matches!(q.as_char(), '=' | '-'));
                if !arrow {
                    angle_depth = angle_depth.saturating_sub(1);
                }
                current.push(tt);
            }
            TokenTree::Punct(p) if p.as_char() == ',' && angle_depth > 0 => current.push(tt),
            TokenTree::Punct(p) if p.as_char() == ',' => {
                if current.is_empty() {
                    cx.error_at(p.span(), "unexpected `,`: expected a layer before it");
                } else {
                    items.push(current.drain(..).collect());
                }
                angle_depth = 0;
            }
            _ => current.push(tt),
        }
    }
    if !current.is_empty() {
        items.push(current.into_iter().collect());
    }
    items
}

/// What an entry was meant to be, judged from its first tokens.
fn role_of(tokens: &TokenStream) -> Role {
    let mut iter = tokens.clone().into_iter();
    match (iter.next(), iter.next()) {
        (Some(TokenTree::Ident(i)), Some(TokenTree::Punct(p))) if p.as_char() == ':' && i == "input" => {
            Role::Input
        }
        (Some(TokenTree::Ident(i)), Some(TokenTree::Punct(p))) if p.as_char() == ':' && i == "output" => {
            Role::Output
        }
        _ => Role::Layer,
    }
}

fn parse_item(input: ParseStream, generics: &[Ident], cx: &Ctxt) -> syn::Result<Item> {
    let tokens: TokenStream = input.fork().parse()?;
    let mut name = None;
    if input.peek2(Token![:]) && !input.peek2(Token![::]) && input.fork().call(Ident::parse_any).is_ok() {
        let key = input.call(Ident::parse_any)?;
        // syn's `Ident` parser refuses keywords, so this tells `type:` from `fc1:`.
        if syn::parse2::<Ident>(key.to_token_stream()).is_err() {
            return Err(syn::Error::new(
                key.span(),
                format!("`{key}` is a Rust keyword and cannot name a layer"),
            ));
        }
        input.parse::<Token![:]>()?;
        if input.is_empty() {
            return Err(syn::Error::new(key.span(), format!("expected a layer after `{key}:`")));
        }
        if key == "input" || key == "output" {
            let tokens = key == "input"
                && input.peek(Ident::peek_any)
                && input.fork().call(Ident::parse_any)? == "tokens"
                && input.peek2(syn::token::Bracket);
            if tokens {
                input.call(Ident::parse_any)?;
            }
            if !input.peek(syn::token::Bracket) {
                return Err(input.error(format!("expected a shape after `{key}:`, e.g. `{key}: [784]`")));
            }
            let shape = parse_shape(input, generics)?;
            expect_end(input, "after the shape")?;
            return Ok(if key == "input" {
                Item::Input { key, shape, tokens }
            } else {
                Item::Output { key, shape }
            });
        }
        name = Some(key);
    }
    if starts_nested(input) {
        let path = parse_type_path(input)?;
        if let Some(habit) = crate::check::hints::capitalised_entry(&path, input) {
            return Err(habit);
        }
        let kind = path
            .segments
            .last()
            .map(|s| s.ident.clone())
            .ok_or_else(|| input.error("expected a network type"))?;
        let ctor_args = if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            Some(content.parse_terminated(<syn::Expr as syn::parse::Parse>::parse, Token![,])?)
        } else {
            None
        };
        let assert = if input.peek(Token![=>]) {
            input.parse::<Token![=>]>()?;
            Some(parse_shape(input, generics)?)
        } else {
            None
        };
        expect_end(input, "after the nested network or layer type")?;
        return Ok(Item::Layer(LayerDef {
            name,
            kind,
            args: None,
            block: None,
            nested: Some(path),
            ctor_args,
            assert,
            tokens,
        }));
    }
    let kind: Ident = input
        .parse()
        .map_err(|e| syn::Error::new(e.span(), "expected a layer such as `dense(128)` or `relu`"))?;
    if (kind == "input" || kind == "output") && name.is_none() {
        return Err(syn::Error::new(kind.span(), format!("expected `{kind}: [..]` with a colon")));
    }
    let args = if input.peek(syn::token::Paren) { Some(parse_args(input, generics)?) } else { None };
    let block =
        if input.peek(syn::token::Brace) { Some(parse_block(input, &kind, generics, cx)?) } else { None };
    let assert = if input.peek(Token![=>]) {
        input.parse::<Token![=>]>()?;
        if !input.peek(syn::token::Bracket) {
            return Err(input.error("expected a shape after `=>`, e.g. `=> [128]`"));
        }
        Some(parse_shape(input, generics)?)
    } else {
        None
    };
    expect_end(input, "after the layer")?;
    Ok(Item::Layer(LayerDef { name, kind, args, block, nested: None, ctor_args: None, assert, tokens }))
}

/// Whether the entry names a type (`Encoder`, `nets::Encoder`, `MyGate<64>(0.5)`):
/// a network or a layer of the user's, rather than a built-in layer.
fn starts_nested(input: ParseStream) -> bool {
    match parse_type_path(&input.fork()) {
        Ok(path) => {
            path.segments.len() > 1
                || path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident.to_string().starts_with(|c: char| c.is_ascii_uppercase()))
        }
        Err(_) => false,
    }
}

/// A type as an entry names it: `a::B`, with generic arguments on the last
/// segment only (`Encoder<64>`), so that a parenthesised list after it is the
/// constructor's arguments (`MyGate(0.5)`), not `Fn(..)` sugar.
fn parse_type_path(input: ParseStream) -> syn::Result<syn::Path> {
    let mut path = syn::Path::parse_mod_style(input)?;
    if input.peek(Token![<]) {
        let args: syn::AngleBracketedGenericArguments = input.parse()?;
        if input.peek(Token![::]) {
            let mut spanned = path.clone();
            if let Some(last) = spanned.segments.last_mut() {
                last.arguments = syn::PathArguments::AngleBracketed(args);
            }
            return Err(syn::Error::new_spanned(
                &spanned,
                "a nested network is its type, with its sizes if it has any: `encoder: Encoder` or `encoder: Encoder<64>`",
            ));
        }
        if let Some(last) = path.segments.last_mut() {
            last.arguments = syn::PathArguments::AngleBracketed(args);
        }
    }
    Ok(path)
}

/// `{ layers.. }` after `residual`, or `{ branch { layers.. } branch { .. } }` after `parallel`.
fn parse_block(input: ParseStream, kind: &Ident, generics: &[Ident], cx: &Ctxt) -> syn::Result<Block> {
    let content;
    let brace = braced!(content in input);
    if kind != "parallel" {
        let body: TokenStream = content.parse()?;
        return Ok(Block::Layers(parse_items(body, generics, cx), brace.span.join()));
    }
    let mut branches = Vec::new();
    while !content.is_empty() {
        let key: Ident =
            content.parse().map_err(|e| syn::Error::new(e.span(), "expected `branch { .. }`"))?;
        if key != "branch" || !content.peek(syn::token::Brace) {
            return Err(syn::Error::new(key.span(), "expected `branch { .. }`"));
        }
        let inner;
        let brace = braced!(inner in content);
        let body: TokenStream = inner.parse()?;
        branches.push((parse_items(body, generics, cx), brace.span.join()));
        if content.peek(Token![,]) {
            content.parse::<Token![,]>()?;
        }
    }
    Ok(Block::Branches(branches, brace.span.join()))
}

fn expect_end(input: ParseStream, context: &str) -> syn::Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(input.error(format!("unexpected tokens {context}; separate entries with `,`")))
    }
}

fn parse_shape(input: ParseStream, generics: &[Ident]) -> syn::Result<ShapeLit> {
    let content;
    let bracket = bracketed!(content in input);
    let mut dims = Vec::new();
    while !content.is_empty() {
        if content.peek(Ident) {
            let ident: Ident = content.parse()?;
            if !generics.contains(&ident) {
                return Err(syn::Error::new(
                    ident.span(),
                    format!("`{ident}` is not a size parameter of this network; declare it: `struct Net<const {ident}: usize>`"),
                ));
            }
            dims.push(SizeLit { span: ident.span(), size: Size::Param(ident) });
        } else {
            dims.push(parse_size_literal(&content)?);
        }
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    if dims.is_empty() {
        return Err(syn::Error::new(bracket.span.join(), "a shape needs at least one size, e.g. `[784]`"));
    }
    Ok(ShapeLit { dims, span: bracket.span.join() })
}

fn parse_size_literal(content: ParseStream) -> syn::Result<SizeLit> {
    let lit: syn::LitInt = content
        .parse()
        .map_err(|e| syn::Error::new(e.span(), "expected a size, e.g. `[784]` or `[1, 28, 28]`"))?;
    let value = lit
        .base10_parse::<usize>()
        .map_err(|_| syn::Error::new(lit.span(), format!("size `{lit}` is too large")))?;
    Ok(SizeLit { size: Size::Lit(value), span: lit.span() })
}

fn parse_args(input: ParseStream, generics: &[Ident]) -> syn::Result<Args> {
    let content;
    let paren = parenthesized!(content in input);
    let mut list = Vec::new();
    while !content.is_empty() {
        let arg = if content.peek(Ident) && content.peek2(Token![=]) && !content.peek2(Token![=>]) {
            let key: Ident = content.parse()?;
            content.parse::<Token![=]>()?;
            Arg::Keyword { key, value: parse_value(&content, generics)? }
        } else {
            let from = parse_value(&content, generics)?;
            if content.peek(Token![->]) {
                content.parse::<Token![->]>()?;
                Arg::Arrow { from, to: parse_value(&content, generics)? }
            } else {
                Arg::Positional(from)
            }
        };
        list.push(arg);
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(Args { span: paren.span.join(), list })
}

fn parse_value(input: ParseStream, generics: &[Ident]) -> syn::Result<Value> {
    if input.is_empty() {
        return Err(input.error("expected a value, e.g. a size such as `128`"));
    }
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        let lit: Lit = input.parse().map_err(|e| syn::Error::new(e.span(), "expected a number after `-`"))?;
        return Ok(Value::Neg(minus, lit));
    }
    if input.peek(Lit) {
        return Ok(Value::Lit(input.parse()?));
    }
    if input.peek(Ident) {
        let ident: Ident = input.parse()?;
        return Ok(if generics.contains(&ident) { Value::Param(ident) } else { Value::Ident(ident) });
    }
    if input.peek(syn::token::Bracket) {
        let content;
        let bracket = bracketed!(content in input);
        let mut values = Vec::new();
        while !content.is_empty() {
            values.push(parse_value(&content, generics)?);
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        return Ok(Value::List(values, bracket.span.join()));
    }
    // Consume one token so the error points at it.
    let tt: TokenTree = input.parse()?;
    let what = match &tt {
        TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis => "a parenthesised group",
        TokenTree::Group(_) => "a block",
        _ => "this",
    };
    Err(syn::Error::new(
        tt.span(),
        format!("expected a number, `true`/`false`, a name or a list, found {what}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse_ok(tokens: TokenStream) -> NetworkDef {
        let cx = Ctxt::new();
        let def = parse(tokens, &cx).expect("frame parses");
        assert!(!cx.has_errors(), "{:?}", cx.messages());
        def
    }

    fn errors(tokens: TokenStream) -> Vec<String> {
        let cx = Ctxt::new();
        let _ = parse(tokens, &cx);
        cx.messages()
    }

    #[test]
    fn parses_the_mlp_example() {
        let def = parse_ok(quote! {
            /// Docs.
            #[derive(Clone)]
            pub struct Mlp {
                input: [784],
                fc1: dense(256), relu,
                fc2: dense(256 -> 128, bias = false) => [128], leaky_relu(0.1),
                head: dense(10),
                output: [10],
            }
        });
        assert_eq!(def.name, "Mlp");
        assert_eq!(def.attrs.len(), 2);
        assert_eq!(def.items.len(), 7);
        assert!(matches!(&def.items[0], Item::Input { shape, .. } if shape.dims[0].size == Size::Lit(784)));
        let Item::Layer(fc2) = &def.items[3] else { panic!("layer") };
        assert_eq!(fc2.name.as_ref().unwrap(), "fc2");
        assert_eq!(fc2.kind, "dense");
        let args = &fc2.args.as_ref().unwrap().list;
        assert!(matches!(&args[0], Arg::Arrow { .. }));
        assert!(matches!(&args[1], Arg::Keyword { key, .. } if key == "bias"));
        assert_eq!(fc2.assert.as_ref().unwrap().dims[0].size, Size::Lit(128));
        assert!(matches!(&def.items[6], Item::Output { .. }));
    }

    #[test]
    fn every_broken_entry_is_reported_and_the_rest_still_parse() {
        let cx = Ctxt::new();
        let def = parse(
            quote! { struct N { input: [4], dense(3) junk, relu, => [2], dense(-), dense(2),, output [2] } },
            &cx,
        )
        .unwrap();
        let msgs = cx.messages();
        // The empty entry is found while splitting, before the entries are parsed.
        assert_eq!(msgs.len(), 5, "{msgs:?}");
        assert!(msgs[0].contains("unexpected `,`"), "{msgs:?}");
        assert!(msgs[1].contains("unexpected tokens after the layer"), "{msgs:?}");
        assert!(msgs[2].contains("expected a layer"), "{msgs:?}");
        assert!(msgs[3].contains("expected a number after `-`"), "{msgs:?}");
        assert!(msgs[4].contains("expected `output: [..]` with a colon"), "{msgs:?}");
        // Broken entries stay as placeholders, so the checker does not report them missing.
        assert_eq!(def.items.len(), 7);
        let broken = def.items.iter().filter(|i| matches!(i, Item::Invalid(Role::Layer, _))).count();
        assert_eq!(broken, 4);
    }

    #[test]
    fn messages_name_what_was_expected() {
        let one = |t: TokenStream| errors(t).join(" | ");
        assert!(one(quote! { struct X { input: [2], fc1: , dense(2) } })
            .contains("expected a layer after `fc1:`"));
        assert!(one(quote! { struct X { input: [2], type: dense(2) } }).contains("`type` is a Rust keyword"));
        assert!(one(quote! { struct X { input: [2], dense(4 ->) } }).contains("expected a value"));
        assert!(one(quote! { struct X; }).contains("expected `{ input: [..], layers.. }`"));
        assert!(
            one(quote! { struct X { input [2], dense(2) } }).contains("expected `input: [..]` with a colon")
        );
    }

    #[test]
    fn frame_errors() {
        assert!(errors(quote! { pub enum X {} })[0].contains("expected `struct Name"));
        assert!(errors(quote! { struct X<T> { input: [1] } })[0].contains("generic over sizes only"));
        assert!(errors(quote! { struct X<const N: u32> { input: [1] } })[0].contains("has type `usize`"));
        assert!(errors(quote! { struct X<'a> { input: [1] } })[0].contains("no lifetime"));
        assert!(
            errors(quote! { struct X<const N: usize> { input: [M] } })[0].contains("not a size parameter")
        );
        assert!(errors(quote! { struct X { } struct Y { } })[0].contains("one network per"));
    }

    #[test]
    fn shape_errors() {
        assert!(errors(quote! { struct X { input: [] } })[0].contains("at least one size"));
        assert!(errors(quote! { struct X { input: [99999999999999999999999] } })[0].contains("too large"));
        assert!(errors(quote! { struct X { input: 784 } })[0].contains("expected a shape after `input:`"));
        assert!(errors(quote! { struct X { input: [a] } })[0].contains("`a` is not a size parameter"));
    }
}
