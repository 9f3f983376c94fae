"""Reply extraction rules (parser.reply) on table cases: clients, languages, signatures, HTML."""

from __future__ import annotations

import pytest

from parser.reply import extract_html, extract_text

NEW = "Thanks, that works for me.\nSee you Tuesday."

ATTRIBUTIONS = {
    "gmail-en": "On Mon, Nov 21, 2026 at 10:04 AM Ana Lima <ana@example.com> wrote:",
    "de": "Am 21.11.2026 um 10:04 schrieb Ana Lima <ana@example.com>:",
    "fr": "Le lun. 21 nov. 2026 à 10:04, Ana Lima <ana@example.com> a écrit :",
    "es": "El lun, 21 nov 2026 a las 10:04, Ana Lima (<ana@example.com>) escribió:",
    "pt": "Em seg., 21 de nov. de 2026 às 10:04, Ana Lima <ana@example.com> escreveu:",
    "nl": "Op ma 21 nov. 2026 om 10:04 schreef Ana Lima <ana@example.com>:",
    "it": "Il giorno lun 21 nov 2026 alle ore 10:04 Ana Lima <ana@example.com> ha scritto:",
    "ja": "2026年11月21日(月) 10:04 Ana Lima <ana@example.com>:",
    "zh": "Ana Lima <ana@example.com> 于2026年11月21日周一 上午10:04写道：",
    "apple-wrapped": "On Nov 21, 2026, at 10:04, Ana Lima\n<ana@example.com> wrote:",
}


@pytest.mark.parametrize("lang", sorted(ATTRIBUTIONS))
def test_quoted_history_after_an_attribution_is_removed(lang):
    body = f"{NEW}\n\n{ATTRIBUTIONS[lang]}\n\n> Can we meet on Tuesday?\n> Ana\n"
    r = extract_text(body)
    assert r.text == NEW
    assert r.quoted


OUTLOOK_BLOCKS = {
    "en": "From: Ana Lima <ana@example.com>\nSent: Monday, November 21, 2026 10:04 AM\nTo: Bo <bo@example.com>\nSubject: Meeting",
    "de": "Von: Ana Lima <ana@example.com>\nGesendet: Montag, 21. November 2026 10:04\nAn: Bo\nBetreff: Termin",
    "fr": "De : Ana Lima <ana@example.com>\nEnvoyé : lundi 21 novembre 2026 10:04\nÀ : Bo\nObjet : Réunion",
    "es": "De: Ana Lima <ana@example.com>\nEnviado: lunes, 21 de noviembre de 2026 10:04\nPara: Bo\nAsunto: Reunión",
    "pt": "De: Ana Lima <ana@example.com>\nEnviado: segunda-feira, 21 de novembro de 2026 10:04\nPara: Bo\nAssunto: Reunião",
    "nl": "Van: Ana Lima <ana@example.com>\nVerzonden: maandag 21 november 2026 10:04\nAan: Bo\nOnderwerp: Afspraak",
    "it": "Da: Ana Lima <ana@example.com>\nInviato: lunedì 21 novembre 2026 10:04\nA: Bo\nOggetto: Riunione",
    "ja": "差出人: Ana Lima <ana@example.com>\n送信日時: 2026年11月21日 10:04\n宛先: Bo\n件名: 会議",
    "zh": "发件人: Ana Lima <ana@example.com>\n发送时间: 2026年11月21日 10:04\n收件人: Bo\n主题: 会议",
}


@pytest.mark.parametrize("lang", sorted(OUTLOOK_BLOCKS))
def test_outlook_header_block_starts_the_history(lang):
    body = f"{NEW}\n\n________________________________\n{OUTLOOK_BLOCKS[lang]}\n\nCan we meet on Tuesday?\n"
    assert extract_text(body).text == NEW


def test_original_message_separator():
    body = f"{NEW}\n\n-----Original Message-----\nFrom: Ana\nSent: today\n\nold text\n"
    assert extract_text(body).text == NEW


def test_not_a_reply_extracts_to_the_whole_body():
    body = "Hello,\n\nHere is the report: 3 items, see below.\n\n  1. a\n  2. b\n"
    r = extract_text(body)
    assert r.text == body.strip() and r.signature is None and not r.quoted


def test_a_body_that_is_only_quoted_is_kept():
    assert extract_text("> only a quote\n> here").text == "> only a quote\n> here"


def test_text_that_merely_mentions_writing_is_kept():
    body = "As Bob wrote:\nwe should ship.\n\nRegards"
    assert extract_text(body).text == body


def test_inline_answers_between_quotes_are_kept():
    body = "On Mon, 21 Nov 2026 at 10:04 Ana <ana@example.com> wrote:\n> Q1?\n\nA1.\n\n> Q2?\n\nA2."
    assert extract_text(body).text == "A1.\n\nA2."


@pytest.mark.parametrize("sig", ["-- \nAna Lima\nACME Corp", "Sent from my iPhone", "Von meinem iPhone gesendet",
                                 "Envoyé de mon iPhone", "Enviado desde mi iPhone", "Get Outlook for iOS"])
def test_signature_block_is_split_off(sig):
    r = extract_text(f"{NEW}\n\n{sig}\n")
    assert r.text == NEW
    assert r.signature == sig
    assert r.with_signature == f"{NEW}\n\n{sig}"


def test_sign_off_words_are_not_a_signature():
    body = "Sure.\n\nThanks,\nAna"
    assert extract_text(body).text == body


HTML_CASES = {
    "gmail": '<div dir="ltr">{new}</div><br><div class="gmail_quote"><div class="gmail_attr">On Mon, Ana &lt;a@b.c&gt; wrote:</div><blockquote class="gmail_quote">old</blockquote></div>',
    "apple": '<div>{new}</div><div><br><blockquote type="cite"><div>On 21 Nov 2026, at 10:04, Ana &lt;a@b.c&gt; wrote:</div>old</blockquote></div>',
    "outlook-web": '<div>{new}</div><hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg"><b>From:</b> Ana<br><b>Sent:</b> Monday<br></div><div>old</div>',
    "outlook-desktop": '<div class="WordSection1"><p>{new}</p><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in"><p><b>From:</b> Ana</p></div><p>old</p></div>',
    "thunderbird": '<p>{new}</p><div class="moz-cite-prefix">On 21/11/2026 10:04, Ana wrote:<br></div><blockquote type="cite">old</blockquote>',
    "yahoo": '<div>{new}</div><div class="yahoo_quoted"><div>On Monday, Ana &lt;a@b.c&gt; wrote:</div>old</div>',
    "text-rules": '<p>{new}</p><p>Am 21.11.2026 um 10:04 schrieb Ana &lt;a@b.c&gt;:</p><p>old</p>',
}


@pytest.mark.parametrize("client", sorted(HTML_CASES))
def test_html_history_is_cut(client):
    html = "<html><body>" + HTML_CASES[client].format(new="Fine by me") + "</body></html>"
    r = extract_html(html)
    assert r.quoted, client
    assert "Fine by me" in r.html
    assert "old" not in r.html and "wrote" not in r.html and "From:" not in r.html


def test_html_without_quote_is_returned_unchanged():
    html = "<html><body><p>Just news</p><blockquote>a real quotation</blockquote><p>more</p></body></html>"
    assert extract_html(html) .html == html


def test_hostile_html_never_raises():
    for html in ["<", "<html><body>" + "<div>" * 5000 + "x", "\x00\x01<p>\ud800</p>", "<?xml version='1.0'?><a/>"]:
        extract_html(html)
