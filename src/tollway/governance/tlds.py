"""Top-level domains an email address may end in: every country code and the common generics.

Shipped as code so it needs no download and survives packaging. An address whose
last label is not here (``x@self.weight``, ``@app.route``) is code, not an email.
"""

from __future__ import annotations

_COUNTRY = """
ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt
bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er
es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr
ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk
lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf
ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc
sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv
tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw
"""

_GENERIC = """
com org net edu gov mil int info biz name pro mobi aero coop museum jobs travel asia app dev io ai
cloud online site website store shop tech email mail live life world today news blog media digital
agency company solutions services systems network software studio design group global academy
school university college health bank finance capital insurance legal law consulting partners
ventures xyz club team works expert social community energy engineering institute foundation
local internal corp
"""

TLDS: frozenset[str] = frozenset(_COUNTRY.split()) | frozenset(_GENERIC.split())
