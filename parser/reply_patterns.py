"""The words mail clients write above quoted history and in mobile signatures, in many languages.

Data only (used by :mod:`parser.reply`). Sources: the attribution lines of Gmail, Outlook (desktop,
web, mobile), Apple Mail, Thunderbird, Yahoo, Zoho, K-9 and the phone mail apps as collected by
quotequail, mail-parser-reply, talon, email_reply_trimmer and crisp's email-reply-parser test
fixtures, in English, German, French, Spanish, Portuguese, Dutch, Italian, Japanese, Chinese,
Korean, Russian, Ukrainian, Polish, Czech, Swedish, Danish, Norwegian, Finnish, Turkish, Hungarian.
"""

from __future__ import annotations

import re

# "On <date>, <name> wrote:" and its translations: the verb that ends an attribution line. The line
# must also carry a date or an address (a digit or "@") to count, so "As Bob wrote:" stays text.
_WROTE_VERBS = (
    r"wrote|writes|schrieb|schreibt|a\s+écrit|a\s+ecrit|écrit|escribió|escribio|escreveu|schreef|"
    r"het\s+volgende\s+geschreven|geschreven|ha\s+scritto|scrisse|написал\(а\)|написала|написал|"
    r"написав\(ла\)|написав|написала|napisał\(a\)|napisała|napisał|pisze|napsal\(a\)|napsal|"
    r"skrev(?:\s+følgende)?|kirjoitti|yazdı|írta|写道|寫道|書きました|のメッセージ|작성(?:하였습니다)?"
)
WROTE_LINE_RE = re.compile(
    rf"(?:\b|^|\s|\)|>)(?:{_WROTE_VERBS})\b[^\n]{{0,120}}?\s*(?:[:：]|-{{2,}})\s*$|"
    rf"(?:{_WROTE_VERBS})\s*[:：]\s*$",
    re.IGNORECASE,
)
# The same verb at the very end without a colon ("On … John <j@x> wrote"): needs a date and an address.
WROTE_END_RE = re.compile(rf"(?:\b|\s)(?:{_WROTE_VERBS})\s*$", re.IGNORECASE)
# The words attribution lines start with ("On", "Am", "Le", "El", "Em", "Op", "Il", "Den", "W dniu"…).
INTRO_WORD_RE = re.compile(
    r"^\s*(?:on|am|le|el|em|op|il(?:\s+giorno)?|den|dne|dnia|w\s+dniu|în|på|kello|на|在|於)\s", re.IGNORECASE)
# Old Gmail: "2013/7/20 Name <a@b>" (no verb, no colon).
GMAIL_DATE_ATTRIBUTION_RE = re.compile(r"^\s*\d{4}/\d{1,2}/\d{1,2}\s.{0,200}<[^<>\s]+@[^<>\s]+>\s*$")
# An address in angle brackets or quotes: what makes a bare "…:" line an attribution.
BRACKETED_ADDRESS_RE = re.compile(r"<[^<>\s]+@[^<>\s]+>|\"[^\"\s]+@[^\"\s]+\"")
# Gmail in Japanese/Chinese: "2016年12月12日(月) 13:20 Name <a@b>:" (no verb).
CJK_ATTRIBUTION_RE = re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日.*[:：]\s*$")
# A bare attribution before a quoted block: "26.06.2014, 14:41, "Alexander L" <abc@example.com>:".
BARE_ATTRIBUTION_RE = re.compile(r"^.{0,300}(?:\d.*@|@.*\d).{0,200}[:：]\s*$")

# Separator lines that open quoted or forwarded history on their own.
_SEPARATOR_WORDS = (
    r"original\s+message|message\s+d'origine|ursprüngliche\s+nachricht|mensaje\s+original|"
    r"mensagem\s+original|messaggio\s+originale|oorspronkelijk\s+bericht|origineel\s+bericht|"
    r"původní\s+zpráva|alkuperäinen\s+viesti|oprindelig\s+meddelelse|opprinnelig\s+melding|"
    r"ursprungligt\s+meddelande|wiadomość\s+oryginalna|исходное\s+сообщение|原始邮件|原始郵件|"
    r"元のメッセージ|forwarded\s+message|weitergeleitete\s+nachricht|message\s+transféré|"
    r"mensaje\s+reenviado|mensagem\s+encaminhada|messaggio\s+inoltrato|doorgestuurd\s+bericht|"
    r"videresendt\s+meddelelse|vidarebefordrat\s+meddelande|пересылаемое\s+сообщение|转发的邮件|転送メッセージ"
)
SEPARATOR_RE = re.compile(
    rf"^\s*(?:-{{2,}}|_{{2,}}|={{2,}})?\s*\[?(?:{_SEPARATOR_WORDS})\]?\s*(?:-{{2,}}|_{{2,}}|={{2,}})?\s*:?\s*$",
    re.IGNORECASE,
)
FORWARD_INTRO_RE = re.compile(
    r"^\s*(?:begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+(?:e-mail|nachricht)|"
    r"début\s+du\s+message\s+réexpédié|inicio\s+del\s+mensaje\s+reenviado|"
    r"início\s+da\s+mensagem\s+reencaminhada|inizio\s+messaggio\s+inoltrato|"
    r"begin\s+doorgestuurd\s+bericht)\s*:\s*$",
    re.IGNORECASE,
)
# A line of only rule characters: Outlook's "________________________________", "====", "-----".
RULE_LINE_RE = re.compile(r"^\s*(?:_{8,}|-{4,}|={4,}|\*{4,})\s*$")

# Outlook-style header blocks ("From: … Sent: … To: … Subject: …") in many languages (lowercase).
FROM_LABELS = frozenset({
    "from", "von", "de", "da", "van", "od", "från", "fra", "от", "от кого", "відправник", "від",
    "lähettäjä", "feladó", "gönderen", "发件人", "寄件者", "寄件人", "差出人", "보낸 사람", "보낸사람",
    "expéditeur", "remitente", "mittente", "afzender", "odesílatel", "nadawca", "avsändare", "afsender",
})
OTHER_LABELS = frozenset({
    "sent", "date", "to", "subject", "cc", "bcc", "reply-to", "organization",
    "gesendet", "datum", "an", "betreff", "kopie", "antwort an",
    "envoyé", "envoyé le", "envoye", "à", "a", "objet", "sujet", "copie à", "cc à", "répondre à",
    "enviado", "enviado el", "enviada", "para", "asunto", "fecha", "cco", "responder a", "assunto", "data",
    "inviato", "oggetto", "risposta", "rispondi a",
    "verzonden", "aan", "onderwerp", "antwoord aan",
    "wysłano", "do", "temat", "dw", "odesláno", "komu", "předmět",
    "skickat", "till", "ämne", "kopia", "sendt", "til", "emne", "dato", "kopi",
    "отправлено", "кому", "тема", "дата", "копия", "надіслано", "кому", "тема",
    "lähetetty", "vastaanottaja", "aihe", "päivämäärä", "elküldve", "címzett", "tárgy",
    "gönderildi", "kime", "konu", "tarih",
    "发送时间", "收件人", "主题", "抄送", "日期", "時間", "寄件日期", "收件者", "主旨", "副本",
    "送信日時", "宛先", "件名", "日付", "보낸 날짜", "받는 사람", "제목", "참조", "날짜",
    "message du",
})
HEADER_LINE_RE = re.compile(r"^\s*[*>]*\s*\*?([^\W\d_][^:*：]{0,24}?)\s*\*?\s*[:：]\s*\*?(.*)$")

# Mobile and webmail sign-offs added below the reply ("Sent from my iPhone" and the like).
SENT_FROM_RE = re.compile(
    r"^\s*(?:[(<]{1,2}\s*)?(?:"
    r"sent\s+(?:from|via|with|using)\b.{0,80}|get\s+(?:\[?outlook|\[?the\s+\w+\s+app).{0,80}|"
    # possessive: what follows each run can never match inside it, so giving back is wasted work
    # (half of this pattern's time on ordinary lines)
    r"from\s+my\s+\w.{0,40}|\w++(?:\s++\w++)?\s++from\s+mobile|"
    r"envoyé\s+(?:de|depuis)\s+(?:mon|ma|l')\s*.{0,60}|envoyé\s+à\s+partir\s+de\s+.{0,80}|"
    r"sent\s+by\s+.{0,40}|"
    r"von\s+meinem\s+.{0,60}\s+gesendet|gesendet\s+von\s+.{0,60}|"
    r"diese\s+nachricht\s+wurde\s+von\s+meinem\s+.{0,80}\s+gesendet\.?|"
    r"enviado\s+(?:desde|do|de)\s+(?:mi|meu|o\s+meu|minha)\s+.{0,60}|"
    r"inviato\s+da\s+.{0,60}|verzonden\s+(?:vanaf|met|via)\s+.{0,60}|"
    r"wysłane\s+z\s+.{0,60}|skickat\s+från\s+.{0,60}|sendt\s+fra\s+.{0,60}|"
    r"отправлено\s+с\s+.{0,60}|"
    r"iphoneから送信|.{0,30}から送信|发自我的.{0,30}|從我的.{0,30}傳送|从我的.{0,30}发送"
    r")\s*[)>]{0,2}\s*$",
    re.IGNORECASE,
)
# RFC 3676 §4.3: the signature delimiter is "-- " alone on a line (often sent as "--").
SIG_DELIMITER_RE = re.compile(r"^-- ?$")
# A sign-off of the form "-Name" or "- Name Surname" (github/email_reply_parser's "-\w" rule,
# restricted to a capitalised name of at most four words).
DASH_NAME_RE = re.compile(r"^-\s?[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,3}\s*$")
# A mailing-list footer starting with a rule of underscores (Mailman's "_____\nlist mailing list").
LIST_FOOTER_RE = re.compile(r"^_{10,}\s*$")
