"""A labelled corpus for secret and PII detection: realistic positives and look-alikes.

Every value is fake but well-formed: random tokens from a seeded generator in each
provider's format, Luhn-valid test card numbers, mod-97-valid example IBANs, fictional
(555-01xx, Ofcom drama) phone numbers, a JWT signed here, private keys generated here
with `cryptography` (a fixed block if it is missing). `POSITIVES` label what each text
contains as (kind, exact value); `NEGATIVES` must produce no finding at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import string
from typing import NamedTuple

_RND = random.Random(20240514)
_B62 = string.ascii_letters + string.digits
_URLSAFE = _B62 + "-_"
_B64 = _B62 + "+/"
_HEX = "0123456789abcdef"


def _r(alphabet: str, n: int) -> str:
    return "".join(_RND.choice(alphabet) for _ in range(n))


class Sample(NamedTuple):
    text: str
    expected: tuple[tuple[str, str], ...]  # (kind, value) pairs; value occurs once in text


def _jwt(claims: dict[str, object], key: bytes = b"not-a-real-signing-key") -> str:
    def seg(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = seg(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = seg(json.dumps(claims).encode())
    sig = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{seg(sig)}"


_FALLBACK_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIHkF4s0c1cQ0n0W4bS3m8Lr0yXcX8kqvP2Uq5b9gq3nZ\n"
    "-----END PRIVATE KEY-----"
)


def _pems() -> dict[str, str]:
    """Freshly generated private keys in four PEM/OpenSSH flavours."""
    try:
        from cryptography.hazmat.primitives import serialization as ser
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    except ImportError:  # pragma: no cover - cryptography ships with the dev extras
        return dict.fromkeys(("pkcs8", "rsa", "ec", "openssh"), _FALLBACK_PEM)
    none = ser.NoEncryption()
    ed = ed25519.Ed25519PrivateKey.generate()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pkcs8, trad = ser.PrivateFormat.PKCS8, ser.PrivateFormat.TraditionalOpenSSL
    ssh = ser.PrivateFormat.OpenSSH
    pem = ser.Encoding.PEM
    return {
        "pkcs8": ed.private_bytes(pem, pkcs8, none).decode().strip(),
        "rsa": rsa_key.private_bytes(pem, trad, none).decode().strip(),
        "ec": ec_key.private_bytes(pem, trad, none).decode().strip(),
        "openssh": ed.private_bytes(pem, ssh, none).decode().strip(),
    }


PEMS = _pems()

# --- fake credentials in each provider's format
OPENAI_LEGACY = "sk-" + _r(_B62, 20) + "T3BlbkFJ" + _r(_B62, 20)
OPENAI_PROJECT = "sk-proj-" + _r(_URLSAFE, 156)
OPENAI_SVCACCT = "sk-svcacct-" + _r(_URLSAFE, 120)
ANTHROPIC = "sk-ant-api03-" + _r(_URLSAFE, 93) + "AA"
ANTHROPIC_ADMIN = "sk-ant-admin01-" + _r(_URLSAFE, 93) + "AA"
AWS_ID = "AKIA" + _r(string.ascii_uppercase + "234567", 16)
AWS_SECRET = _r(_B64, 40)
AWS_SESSION_ID = "ASIA" + _r(string.ascii_uppercase + "234567", 16)
AWS_SESSION_TOKEN = "IQoJb3JpZ2luX2VjE" + _r(_B64, 120)
AWS_EXAMPLE_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_CSV_ID = "AKIA" + _r(string.ascii_uppercase + "234567", 16)
AWS_CSV_SECRET = _r(_B64, 40)
GITHUB_PAT = "ghp_" + _r(_B62, 36)
GITHUB_OAUTH = "gho_" + _r(_B62, 36)
GITHUB_FINE = "github_pat_" + _r(_B62, 22) + "_" + _r(_B62, 59)
GITHUB_APP = "ghs_" + _r(_B62, 36)
GITLAB = "glpat-" + _r(_URLSAFE, 20)
SLACK_BOT = f"xoxb-{_r('0123456789', 12)}-{_r('0123456789', 13)}-{_r(_B62, 24)}"
_DIGITS = string.digits
_UPPER_DIGITS = string.ascii_uppercase + string.digits
SLACK_USER = f"xoxp-{_r(_DIGITS, 12)}-{_r(_DIGITS, 12)}-{_r(_DIGITS, 13)}-{_r(_HEX, 32)}"
SLACK_HOOK = (
    "https://hooks.slack.com/services/"
    f"T{_r(_UPPER_DIGITS, 8)}/B{_r(_UPPER_DIGITS, 10)}/{_r(_B62, 24)}"
)
STRIPE_LIVE = "sk_live_" + _r(_B62, 99)
STRIPE_RESTRICTED = "rk_live_" + _r(_B62, 99)
STRIPE_TEST = "sk_test_" + _r(_B62, 24)
GOOGLE = "AIza" + _r(_URLSAFE, 35)
GOOGLE_2 = "AIza" + _r(_URLSAFE, 35)
TWILIO_KEY = "SK" + _r(_HEX, 32)
TWILIO_TOKEN = _r(_HEX, 32)
SENDGRID = f"SG.{_r(_URLSAFE, 22)}.{_r(_URLSAFE, 43)}"
NPM = "npm_" + _r(_B62, 36)
TOLLWAY = "tw-" + secrets.token_urlsafe(32)
TOLLWAY_ADMIN = "tw-admin-" + secrets.token_urlsafe(32)
JWT_1 = _jwt({"sub": "1234567890", "name": "Jane Doe", "iat": 1516239022})
JWT_2 = _jwt({"sub": "svc-billing", "scope": "invoices:read", "exp": 1900000000})
JWT_3 = _jwt({"uid": 42, "role": "admin"}, key=b"another-key")
JWT_4 = _jwt({"sub": "auth0|5f1c", "aud": "api.acme.io", "exp": 1800000000})
HF_TOKEN = "hf_" + _r(_B62, 34)
BEARER_OPAQUE = _r(_URLSAFE, 40)
GOOGLE_CLIENT_SECRET = "GOCSPX-" + _r(_URLSAFE, 28)
HEX_API_KEY = _r(_HEX, 32)
X_API_KEY = _r(_HEX, 40)
BASIC = base64.b64encode(b"deploy:" + _r(_B62, 16).encode()).decode()

POSITIVES: list[Sample] = [
    # --- OpenAI and Anthropic
    Sample(
        f'from openai import OpenAI\n\nclient = OpenAI(api_key="{OPENAI_LEGACY}")\n'
        'resp = client.chat.completions.create(model="gpt-4o", messages=msgs)\n',
        (("openai_key", OPENAI_LEGACY),),
    ),
    Sample(
        f"# .env\nOPENAI_API_KEY={OPENAI_PROJECT}\nOPENAI_ORG=org-acme\nDEBUG=false\n",
        (("openai_key", OPENAI_PROJECT),),
    ),
    Sample(
        f"hey, I think I leaked my key earlier ({OPENAI_PROJECT[:60]}) in the channel, "
        "should I rotate it?",
        (("openai_key", OPENAI_PROJECT[:60]),),
    ),
    Sample(
        "curl https://api.openai.com/v1/models \\\n"
        f'  -H "Authorization: Bearer {OPENAI_SVCACCT}"\n',
        (("openai_key", OPENAI_SVCACCT),),
    ),
    Sample(
        f"export ANTHROPIC_API_KEY={ANTHROPIC}\npython agent.py --model claude-sonnet-4\n",
        (("anthropic_key", ANTHROPIC),),
    ),
    Sample(
        json.dumps({"provider": "anthropic", "admin_key": ANTHROPIC_ADMIN, "org": "acme"}),
        (("anthropic_key", ANTHROPIC_ADMIN),),
    ),
    # --- AWS
    Sample(
        f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n"
        "region = eu-west-1\n",
        (("aws_access_key_id", AWS_ID), ("aws_secret_access_key", AWS_SECRET)),
    ),
    Sample(
        f"export AWS_ACCESS_KEY_ID={AWS_SESSION_ID}\n"
        f"export AWS_SESSION_TOKEN={AWS_SESSION_TOKEN}\n",
        (("aws_access_key_id", AWS_SESSION_ID), ("token", AWS_SESSION_TOKEN)),
    ),
    Sample(
        's3 = boto3.client(\n    "s3",\n'
        f'    aws_access_key_id="{AWS_EXAMPLE_ID}",\n'
        f'    aws_secret_access_key="{AWS_EXAMPLE_SECRET}",\n)\n',
        (("aws_access_key_id", AWS_EXAMPLE_ID), ("aws_secret_access_key", AWS_EXAMPLE_SECRET)),
    ),
    Sample(
        "User name,Password,Access key ID,Secret access key,Console login link\n"
        f"ci-bot,,{AWS_CSV_ID},{AWS_CSV_SECRET},https://acme.signin.aws.amazon.com/console\n",
        (("aws_access_key_id", AWS_CSV_ID), ("aws_secret_access_key", AWS_CSV_SECRET)),
    ),
    # --- GitHub and GitLab
    Sample(
        f"git remote set-url origin https://{GITHUB_PAT}@github.com/acme/billing.git\n"
        "git push origin main",
        (("github_token", GITHUB_PAT),),
    ),
    Sample(
        "2024-05-14 10:22:31 DEBUG oauth: exchanged code for token "
        f"access_token={GITHUB_OAUTH} scope=repo,read:org",
        (("github_token", GITHUB_OAUTH),),
    ),
    Sample(
        "jobs:\n  release:\n    runs-on: ubuntu-latest\n    env:\n"
        f"      GH_TOKEN: {GITHUB_FINE}\n    steps:\n      - uses: actions/checkout@v4\n",
        (("github_token", GITHUB_FINE),),
    ),
    Sample(
        f"Run gh api repos/acme/app/installation\n  GITHUB_TOKEN: {GITHUB_APP}\n"
        "Error: HTTP 401: Bad credentials",
        (("github_token", GITHUB_APP),),
    ),
    Sample(
        f'curl --header "PRIVATE-TOKEN: {GITLAB}" '
        '"https://gitlab.example.com/api/v4/projects/42/pipelines"',
        (("gitlab_token", GITLAB),),
    ),
    # --- Slack
    Sample(
        "from slack_sdk import WebClient\n\n"
        f'client = WebClient(token="{SLACK_BOT}")\n'
        'client.chat_postMessage(channel="#deploys", text="done")\n',
        (("slack_token", SLACK_BOT),),
    ),
    Sample(
        f"the old user token was {SLACK_USER} - can you check if it still has admin scope?",
        (("slack_token", SLACK_USER),),
    ),
    Sample(
        f'SLACK_WEBHOOK = "{SLACK_HOOK}"\n'
        "requests.post(SLACK_WEBHOOK, json={'text': 'build failed'})\n",
        (("slack_webhook", SLACK_HOOK),),
    ),
    # --- Stripe, Google, Twilio, SendGrid, npm
    Sample(
        f"const stripe = require('stripe')('{STRIPE_LIVE}');\n"
        "const session = await stripe.checkout.sessions.create({ mode: 'payment' });\n",
        (("stripe_key", STRIPE_LIVE),),
    ),
    Sample(
        f"STRIPE_RESTRICTED_KEY={STRIPE_RESTRICTED}\nSTRIPE_WEBHOOK_PATH=/hooks/stripe\n",
        (("stripe_key", STRIPE_RESTRICTED),),
    ),
    Sample(
        f"In the docs example they use `{STRIPE_TEST}` but my test charges fail with 402.",
        (("stripe_key", STRIPE_TEST),),
    ),
    Sample(
        "const map = new google.maps.Map(el, {\n  center: { lat: -34.397, lng: 150.644 },\n});\n"
        f'loader.load({{ apiKey: "{GOOGLE}", version: "weekly" }});\n',
        (("google_api_key", GOOGLE),),
    ),
    Sample(
        "GET https://maps.googleapis.com/maps/api/geocode/json?address=Berlin"
        f"&key={GOOGLE_2} -> 200 OK",
        (("google_api_key", GOOGLE_2),),
    ),
    Sample(
        "from twilio.rest import Client\n\n"
        f'TWILIO_API_KEY_SID = "{TWILIO_KEY}"\n'
        f'TWILIO_AUTH_TOKEN = "{TWILIO_TOKEN}"\n'
        "client = Client(TWILIO_API_KEY_SID, TWILIO_AUTH_TOKEN, account_sid)\n",
        (("twilio_api_key", TWILIO_KEY), ("twilio_auth_token", TWILIO_TOKEN)),
    ),
    Sample(
        f"SENDGRID_API_KEY='{SENDGRID}'\nFROM_EMAIL=noreply@acme-corp.com\n",
        (("sendgrid_key", SENDGRID), ("email", "noreply@acme-corp.com")),
    ),
    Sample(
        f"# ~/.npmrc\n//registry.npmjs.org/:_authToken={NPM}\nalways-auth=true\n",
        (("npm_token", NPM),),
    ),
    # --- Tollway's own keys
    Sample(
        f'oai = openai.OpenAI(base_url="http://127.0.0.1:4000/v1", api_key="{TOLLWAY}")\n',
        (("tollway_key", TOLLWAY),),
    ),
    Sample(
        f"curl -s localhost:4000/admin/v1/usage -H 'Authorization: Bearer {TOLLWAY_ADMIN}' | jq .",
        (("tollway_key", TOLLWAY_ADMIN),),
    ),
    # --- private keys
    Sample(
        f"This key fails with `invalid format` when I ssh-add it, why?\n\n{PEMS['rsa']}\n\nThanks!",
        (("private_key", PEMS["rsa"]),),
    ),
    Sample(
        "tls:\n  cert_file: /etc/tls/server.crt\n  key: |\n"
        + "\n".join("    " + line for line in PEMS["ec"].splitlines())
        + "\n",
        (("private_key", PEMS["ec"].splitlines()[1]),),
    ),
    Sample(
        f"$ cat ~/.ssh/id_ed25519\n{PEMS['openssh']}\n$ ",
        (("private_key", PEMS["openssh"]),),
    ),
    Sample(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "acme-prod",
                "private_key_id": "c0ffee",
                "private_key": PEMS["pkcs8"] + "\n",
                "client_email": "billing@acme-prod.iam.gserviceaccount.com",
            },
            indent=2,
        ),
        (
            ("private_key", json.dumps(PEMS["pkcs8"])[1:-1]),
            ("email", "billing@acme-prod.iam.gserviceaccount.com"),
        ),
    ),
    # --- JSON Web Tokens
    Sample(
        f"GET /api/v2/invoices HTTP/1.1\nHost: api.acme.io\nAuthorization: Bearer {JWT_1}\n",
        (("jwt", JWT_1),),
    ),
    Sample(
        f'10.0.0.7 - - [14/May/2024:10:22:31 +0000] "GET /me" 401 cookie="session={JWT_2}"',
        (("jwt", JWT_2),),
    ),
    Sample(
        json.dumps({"access_token": JWT_3, "token_type": "bearer", "expires_in": 3600}),
        (("jwt", JWT_3),),
    ),
    Sample(
        f"This is the token the login endpoint returned, is it expired? {JWT_4}.",
        (("jwt", JWT_4),),
    ),
    # --- passwords in URLs
    Sample(
        'DATABASES = {"default": dj_database_url.parse('
        '"postgres://billing:Xk9pQ2vLr7@db.internal:5432/billing")}\n',
        (("url_password", "Xk9pQ2vLr7"),),
    ),
    Sample(
        "CELERY_BROKER_URL=redis://:S3cretPass99@cache.internal:6379/0\n",
        (("url_password", "S3cretPass99"),),
    ),
    Sample(
        "MONGO_URI=mongodb+srv://analytics:n7Hq2Lw9Zt@cluster0.ab1cd.mongodb.net/prod"
        "?retryWrites=true",
        (("url_password", "n7Hq2Lw9Zt"),),
    ),
    Sample(
        "services:\n  worker:\n    environment:\n"
        "      - AMQP_URL=amqp://guest:Rabbit-2024-x@rabbitmq:5672/vhost\n",
        (("url_password", "Rabbit-2024-x"),),
    ),
    # --- secrets assigned to credential names
    Sample(
        "database:\n  host: db.internal\n  user: billing\n  password: Tr0ub4dor&3\n",
        (("password", "Tr0ub4dor&3"),),
    ),
    Sample(
        '{"username": "admin", "password": "correct-Horse-7", "remember": true}',
        (("password", "correct-Horse-7"),),
    ),
    Sample("DB_HOST=localhost\nDB_PASSWORD=hunter2!\nDB_PORT=5432\n", (("password", "hunter2!"),)),
    Sample(
        'conn = psycopg2.connect(host="db", user="app", password="pa55w0rd-Prod", dbname="app")',
        (("password", "pa55w0rd-Prod"),),
    ),
    Sample(
        f'const apiKey = "{HEX_API_KEY}";\nfetch(`/v1/data?key=${{apiKey}}`);\n',
        (("api_key", HEX_API_KEY),),
    ),
    Sample(
        "# settings.py\nSECRET_KEY = 'django-insecure-7x!q2m@9f#k$w3zv&t8r^b1n+e5h(l0'\n"
        "DEBUG = False\n",
        (("secret", "django-insecure-7x!q2m@9f#k$w3zv&t8r^b1n+e5h(l0"),),
    ),
    Sample(
        json.dumps(
            {
                "web": {
                    "client_id": "1234-abc.apps.googleusercontent.com",
                    "client_secret": GOOGLE_CLIENT_SECRET,
                }
            }
        ),
        (("secret", GOOGLE_CLIENT_SECRET),),
    ),
    Sample(
        f"HF_TOKEN={HF_TOKEN} huggingface-cli download meta-llama/Llama-3-8B",
        (("token", HF_TOKEN),),
    ),
    Sample(
        'curl -X POST https://api.vendor.io/v1/events -H "Content-Type: application/json" '
        f'-H "Authorization: Bearer {BEARER_OPAQUE}" -d @payload.json',
        (("bearer_token", BEARER_OPAQUE),),
    ),
    Sample(
        f'curl -H "Authorization: Basic {BASIC}" https://jenkins.internal/api/json',
        (("basic_auth", BASIC),),
    ),
    Sample(
        "mysqldump -h db.internal -u root --password Hunter2-prod billing > dump.sql",
        (("password", "Hunter2-prod"),),
    ),
    Sample(
        f"requests.get(url, headers={{'x-api-key': '{X_API_KEY}'}}, timeout=10)",
        (("api_key", X_API_KEY),),
    ),
    Sample(
        "Guest network details for the offsite - SSID: acme-guest, password: Blue-Falcon-42",
        (("password", "Blue-Falcon-42"),),
    ),
    # --- email addresses
    Sample(
        "Thanks for the quick turnaround!\n\nBest,\nJane Doe\nHead of Finance, Acme Corp\n"
        "jane.doe@acme-corp.com",
        (("email", "jane.doe@acme-corp.com"),),
    ),
    Sample(
        "id,name,email,plan\n1041,Oliver Smith,oliver.smith+billing@example.co.uk,pro\n",
        (("email", "oliver.smith+billing@example.co.uk"),),
    ),
    Sample(
        "commit 9f2c1e7\nAuthor: Priya Raman <priya.raman@fastmail.fm>\nDate:   Tue May 14\n",
        (("email", "priya.raman@fastmail.fm"),),
    ),
    Sample(
        'users = [{"id": 7, "email": "m.garcia@universidad.edu.mx", "active": True}]',
        (("email", "m.garcia@universidad.edu.mx"),),
    ),
    # --- phone numbers
    Sample(
        "Customer called from (415) 555-0132 about a double charge; please call back today.",
        (("phone", "(415) 555-0132"),),
    ),
    Sample("Support hotline: +1 202 555 0147 (24/7)", (("phone", "+1 202 555 0147"),)),
    Sample(
        "Our London office is on +44 20 7946 0958, the mobile is +44 7700 900123.",
        (("phone", "+44 20 7946 0958"), ("phone", "+44 7700 900123")),
    ),
    Sample("Ansprechpartner: Herr Weber, Tel. 030 90182734", (("phone", "030 90182734"),)),
    Sample("Rappelez-moi au 06 12 34 56 78 avant 18h.", (("phone", "06 12 34 56 78"),)),
    Sample("fax 415.555.0199 or email", (("phone", "415.555.0199"),)),
    Sample("WhatsApp: +49 151 23456789", (("phone", "+49 151 23456789"),)),
    Sample("Toll free: 1-800-555-0199.", (("phone", "1-800-555-0199"),)),
    # --- payment cards
    Sample(
        "The customer's card 4111 1111 1111 1111 exp 12/27 was declined twice.",
        (("card_number", "4111 1111 1111 1111"),),
    ),
    Sample("Card: 5555-5555-5555-4444, CVC 123", (("card_number", "5555-5555-5555-4444"),)),
    Sample("amex on file: 3782 822463 10005", (("card_number", "3782 822463 10005"),)),
    Sample(
        '{"payment_method": {"number": "6011111111111117", "exp": "01/29"}}',
        (("card_number", "6011111111111117"),),
    ),
    Sample(
        "test with JCB 3530111333300000 and Diners 30569309025904 please",
        (("card_number", "3530111333300000"), ("card_number", "30569309025904")),
    ),
    # --- national ids and bank accounts
    Sample(
        "Applicant: John Q. Public, DOB 1984-03-12, SSN 536-22-8471, employer Acme Corp.",
        (("ssn", "536-22-8471"),),
    ),
    Sample("social security number: 536 22 8471", (("ssn", "536 22 8471"),)),
    Sample(
        "Please wire the refund to IBAN GB82 WEST 1234 5698 7654 32 (Westminster Bank).",
        (("iban", "GB82 WEST 1234 5698 7654 32"),),
    ),
    Sample(
        '{"beneficiary": "Acme GmbH", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX"}',
        (("iban", "DE89370400440532013000"),),
    ),
    Sample(
        "RIB / IBAN : FR14 2004 1010 0505 0001 3M02 606",
        (("iban", "FR14 2004 1010 0505 0001 3M02 606"),),
    ),
    Sample("NI number AB 12 34 56 C on the P60.", (("uk_nino", "AB 12 34 56 C"),)),
    # --- several kinds in one message
    Sample(
        "Ticket #48213: customer Maria Rossi (maria.rossi@posteo.de, +39 06 6982 1234) "
        "says card 5105 1051 0510 5100 was charged twice.",
        (
            ("email", "maria.rossi@posteo.de"),
            ("phone", "+39 06 6982 1234"),
            ("card_number", "5105 1051 0510 5100"),
        ),
    ),
    Sample(
        "Traceback (most recent call last):\n"
        '  File "/srv/app/db.py", line 12, in connect\n'
        "    engine = create_engine(url)\n"
        "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at "
        '"db.internal" failed: FATAL: password authentication failed for user "billing"\n'
        "(Background on this error: postgresql://billing:Fj3kd92Lqp@db.internal/billing)",
        (("url_password", "Fj3kd92Lqp"),),
    ),
]

_UUID = "8f14e45f-ceea-467f-a0e6-55b7a0c1d2e3"
_SHA = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
    "2mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
_NOT_JWT = base64.urlsafe_b64encode(b'{"type":"service_account"}').rstrip(b"=").decode()

NEGATIVES: list[str] = [
    f"2024-05-14T10:22:31.512Z INFO request_id={_UUID} status=200 duration_ms=412",
    f"Merge commit {_SHA} into main (fixes #1432)",
    f'<img src="data:image/png;base64,{_PNG}" alt="pixel">',
    "Upgraded from version 1.2.3.4 to 2.10.0; Python 3.11.7, OpenSSL 3.0.13",
    "Deadline moved from 2024-05-14 to 14/06/2024 (or 06.14.2024 in US order).",
    "Connect to 192.168.100.200 or 10.0.12.7:8443; fallback 172.16.254.1",
    "Order ORD-2024-558812 shipped; invoice INV-2024-000123-77 attached; order #100234556",
    "Test with 4111 1111 1111 1112 - it should fail the Luhn check.",
    "Account number 1234 5678 9012 3456 is the internal ledger id.",
    "We use sk-learn (scikit-learn) for the baseline and sk-learn-compatible-estimators too.",
    'password = os.environ["DB_PASSWORD"]\nuser = os.environ["DB_USER"]',
    "password: ********\napi_key: ********",
    "api_key=YOUR_API_KEY\nsecret=YOUR_SECRET_HERE",
    "Set api_key: <your-key> and token: <your-token> in config.yaml",
    "OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    '@app.route("/login", methods=["POST"])\n@login_required\ndef login():\n    ...',
    "@dataclass(frozen=True)\nclass Point:\n    x: int\n    y: int",
    "git clone git@github.com:acme/billing.git && cd billing",
    "npm install @types/node@18.11.9 @angular/core@17.0.1",
    "FROM nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
    f"The header looked like eyJhbGciOiJIUzI1NiJ9 and the body was {_NOT_JWT}.{_NOT_JWT}.x",
    "Never paste your -----BEGIN PRIVATE KEY----- block into chat.",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEq5i9bWqKCGuyuSJm0d5RPw8+XfJA\n"
    "-----END PUBLIC KEY-----",
    "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
    '<div class="tw-flex tw-items-center tw-justify-between tw-gap-4 tw-rounded-lg">',
    "colors: primary #ff5733, secondary #1a2b3c; spacing 8px",
    'timeout=30000, "max_tokens": 1024, port 5432, retries=3',
    '{"id": "chatcmpl-5491676960", "created": 1795877982, "object": "chat.completion"}',
    "Error 0x80070005: access denied (HRESULT 2147942405)",
    "pi is roughly 3.14159265358979 and e is 2.718281828459045",
    "ISBN 978-3-16-148410-0, ISSN 0317-8471",
    "UPS tracking 1Z999AA10123456784 arrives Thursday",
    'assert hashlib.sha256(b"").hexdigest() == '
    '"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
    "token = tokenizer.encode(text)\ntokens = token[:512]",
    'next_page_token = response["nextPageToken"]\nmax_tokens: 4096',
    "password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt())",
    "def login(username: str, password: str) -> bool:\n    return check(username, password)",
    '"password": {"type": "string", "minLength": 8, "format": "password"}',
    'api_key = get_secret("openai")\nclient = OpenAI(api_key=api_key)',
    "secretName: prod-db-credentials\nsecret_name: prod/db-credentials",
    "environment:\n  PASSWORD: ${DB_PASSWORD}\n  API_KEY: ${API_KEY}",
    "DATABASE_URL=postgresql://user:password@localhost:5432/db",
    "http://localhost:8080/api/items?id=42&page=2",
    "pk_test_TYooMQauvdEDq54NiTphI7jx is the publishable key from Stripe's docs",
    "Long-term AWS access key ids start with AKIA and temporary ones with ASIA.",
    "GitHub personal access tokens start with ghp_ and fine-grained ones with github_pat_.",
    "Call extension 4521 or go to room 101 on floor 3.",
    "Scores per round: 100-200-300-400, total 1000",
    "The office is at 37.7749, -122.4194 (San Francisco).",
    "y = x + 12345678\nz = y+87654321",
    "Revenue grew to $1,234,567.89 (up 12.5%) on 4,500,000 requests.",
    "resources:\n  limits:\n    cpu: 500m\n    memory: 1024Mi",
    "MAC 00:1A:2B:3C:4D:5E and 00-1A-2B-3C-4D-5F",
    'dependencies: "react": "^18.2.0 || >=19.0.0"',
    "values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]",
    "The password reset link expires in 24 hours; you can change your password afterwards.",
    "Password: (hidden)\nPhone: N/A\nEmail: n/a",
    "routing number 021000021 and check number 1042",
    "snowflake id 1152921504606846976 from the Discord API",
    'email = f"{user}@{domain}"\naddr = "%s@%s" % (name, host)',
    "y = x@self.weight + self.bias\nz = a@b",
    "pattern = r'[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}'",
    "The meeting ID is 845 2231 9904 and the passcode is on the invite.",
    "Batch 2024-05-14 processed 1,532 rows in 412 ms (p99 980 ms).",
    "SSN format is XXX-XX-XXXX; invalid examples: 000-12-3456, 666-12-3456, 912-34-5678",
    "IBAN format check: GB82 WEST 1234 5698 7654 33 has a bad check digit",
    "glpat-xxxxxxxxxxxxxxxxxxxx is the placeholder in our runbook",
    "Bearer <token>\nAuthorization: Bearer $TOKEN\nAuthorization: Bearer YOUR_TOKEN_HERE",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl deploy",
    "The phone number field accepts formats like +1 (XXX) XXX-XXXX.",
    "Kubernetes: kubectl create secret generic db --from-literal=password=$(cat pw.txt)",
    "The basic authentication scheme sends credentials; Basic auth is deprecated here.",
    'docker login --username ci --password "$REGISTRY_TOKEN" registry.acme.io',
    "Use --password-stdin instead of --password on the command line.",
]
