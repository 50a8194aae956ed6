//! `#[derive(Module)]`: generates the [`Visit`] implementation that lists a
//! module's parameters, buffers and train/eval flags, so that a layer
//! written as a plain struct needs no registration code.
//!
//! For each field it emits `Visit::visit(&self.field, "prefix.field", f)`.
//! Fields marked `#[module(skip)]` are left out (configuration, caches).

use proc_macro::TokenStream;
use proc_macro_crate::{crate_name, FoundCrate};
use quote::{format_ident, quote};
use syn::{parse_macro_input, Data, DeriveInput, Fields, Index};

/// The path under which the generated code finds `Visit`: `::chapter_05`
/// inside the chapters, `::candle::nn` for users of the `candle-lib` facade.
fn library_path() -> proc_macro2::TokenStream {
    match crate_name("chapter-05") {
        // Inside chapter-05 (its lib, tests and examples) the crate aliases
        // itself as `chapter_05` (`extern crate self as chapter_05`).
        Ok(FoundCrate::Itself) => quote!(::chapter_05),
        Ok(FoundCrate::Name(name)) => {
            let ident = format_ident!("{}", name);
            quote!(::#ident)
        }
        Err(_) => match crate_name("candle-lib") {
            Ok(FoundCrate::Name(name)) => {
                let ident = format_ident!("{}", name);
                quote!(::#ident::nn)
            }
            _ => quote!(::candle::nn),
        },
    }
}

// ANCHOR: derive
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let name = &input.ident;
    let lib = library_path();
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let fields = match &input.data {
        Data::Struct(s) => &s.fields,
        _ => {
            return syn::Error::new_spanned(name, "#[derive(Module)] supports structs only")
                .to_compile_error()
                .into()
        }
    };
    let skipped = |attrs: &[syn::Attribute]| {
        attrs.iter().any(|a| {
            a.path().is_ident("module")
                && a.parse_args::<syn::Ident>()
                    .map(|i| i == "skip")
                    .unwrap_or(false)
        })
    };
    let visits = match fields {
        Fields::Named(named) => named
            .named
            .iter()
            .filter(|f| !skipped(&f.attrs))
            .map(|f| {
                let ident = f.ident.as_ref().unwrap();
                let label = ident.to_string();
                quote! {
                    #lib::Visit::visit(&self.#ident, &#lib::join_name(prefix, #label), f);
                }
            })
            .collect::<Vec<_>>(),
        Fields::Unnamed(unnamed) => unnamed
            .unnamed
            .iter()
            .enumerate()
            .filter(|(_, f)| !skipped(&f.attrs))
            .map(|(i, _)| {
                let index = Index::from(i);
                let label = i.to_string();
                quote! {
                    #lib::Visit::visit(&self.#index, &#lib::join_name(prefix, #label), f);
                }
            })
            .collect(),
        Fields::Unit => vec![],
    };
    quote! {
        impl #impl_generics #lib::Visit for #name #ty_generics #where_clause {
            fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, #lib::Slot<'_>)) {
                #(#visits)*
            }
        }
    }
    .into()
}
// ANCHOR_END: derive
