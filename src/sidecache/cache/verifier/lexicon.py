"""The verifier's word lists: what carries no content, what negates, what opposes what.

Plain data plus the small suffix stripper they are keyed by (:func:`stem`), so that the text
analysis, the contradiction rules and the pair features all read the same lists. Nothing here
looks at a prompt; growing a list changes what :mod:`.analysis` and :mod:`.rules` see.
"""

from __future__ import annotations

STOP = frozenset(
    """
    a an the of to in on at for with by from as is are was were be been being am do does did done
    doing have has had having i me my mine we us our you your yours he him his she her it its they
    them their this that these those there here and or but if so than then too very just also
    can could would should will shall may might must
    what how why when where who whom whose which
    please kindly thanks thank thx pls plz hi hey hello yo dear
    some any all each every much many more most such own same other another
    into onto about up out over under again further once
    way ways get got make made use using used give tell show explain help want need like know let
    s t d ll re ve m o y u ur im id
    """.split()
)
"""Words that carry no content for the question. Negations, directions and numbers are kept
apart below; question words are also compared on their own."""

FILLER = frozenset(
    """
    please kindly thanks thank thx pls plz could would can you me i hi hey hello yo really
    appreciate quick quickly simple simply short brief briefly just actually basically
    tell write give show explain help want need like know let wondering wonder possible
    """.split()
)
"""Politeness and framing words: a paraphrase often adds or drops them."""

FRAME = frozenset(
    """
    best good better easiest easy simplest simple quickest quick fastest proper right correct
    tip tips advice guide steps step way ways method methods question questions wondering idea
    ideas suggestion suggestions recommendation recommend option options example examples thing
    things anyone someone somebody sir guys folks ok okay hey
    """.split()
)
"""Words that frame a question rather than say what it is about ("best way to", "any tips
on", "quick question"): a paraphrase swaps them freely, so :mod:`.rules` looks past them when
it compares the words two prompts are about."""

QWORDS = ("what", "how", "why", "when", "where", "who", "which", "whose", "whom")

NEGATIONS = frozenset(
    """
    not no never none nobody nothing nowhere neither nor without cannot cant dont doesnt isnt
    arent wasnt werent shouldnt wouldnt couldnt didnt hasnt havent hadnt wont mustnt neednt aint
    avoid avoids avoided avoiding refuse refuses refused refusing unable impossible lack lacks
    lacking lacked except exclude excluding absence absent non prevent prevents prevented
    preventing forbid forbids forbidden prohibit prohibits prohibited banned disallow disallowed
    barely hardly
    """.split()
)
"""Words that flip what a prompt asks. Phrases that do the same ("fail to", "stay away from",
"sugar-free", "w/o") are rewritten into these by :mod:`.analysis` first."""

_ANTONYMS_RAW = """
enable disable; enabled disabled; install uninstall; installed uninstalled; encrypt decrypt;
encryption decryption; compress decompress; zip unzip; upload download; import export; increase
decrease; increase reduce; raise lower; add remove; added removed; show hide; visible hidden;
lock unlock; locked unlocked; mount unmount; start stop; started stopped; open close; opened
closed; allow block; allow deny; accept reject; accept decline; approve reject; include exclude;
subscribe unsubscribe; follow unfollow; mute unmute; connect disconnect; connected disconnected;
encode decode; encoding decoding; serialize deserialize; serialization deserialization; push
pull; buy sell; buying selling; bought sold; win lose; won lost; gain lose; gain loss; profit
loss; success failure; succeed fail; succeeded failed; pass fail; passed failed; true false;
pros cons; advantage disadvantage; advantages disadvantages; benefit risk; benefits risks;
benefit drawback; benefits drawbacks; positive negative; best worst; better worse; good bad; max
min; maximum minimum; largest smallest; biggest smallest; highest lowest; high low; higher
lower; most least; fastest slowest; faster slower; cheapest expensive; cheap expensive; cheaper
pricier; ascending descending; asc desc; uppercase lowercase; upper lower; first last; before
after; earlier later; early late; old new; older newer; oldest newest; young old; long short;
longer shorter; online offline; inside outside; inner outer; internal external; input output;
inbound outbound; incoming outgoing; send receive; sent received; sender receiver; read write;
reader writer; sync async; synchronous asynchronous; public private; horizontal vertical;
horizontally vertically; row column; rows columns; left right; up down; upgrade downgrade; north
south; east west; male female; men women; man woman; boy girl; husband wife; son daughter;
father mother; love hate; like dislike; happy sad; cheerful sad; hot cold; warm cool; summer
winter; day night; morning evening; sunrise sunset; light dark; lighter darker; wet dry; full
empty; charge drain; charging draining; plus minus; credit debit; deposit withdraw; borrow lend;
import export; arrive depart; arrival departure; arrivals departures; entry exit; enter exit;
login logout; signin signout; checkin checkout; signup signout; forward backward; next previous;
prev next; ahead behind; above below; top bottom; turnon turnoff; switchon switchoff; zoomin
zoomout; scaleup scaledown; scalein scaleout; speedup slowdown; poweron poweroff; optin optout;
sun shade; sunny shady; front back; head tail; client server; parent child; master slave;
primary replica; primary secondary; local remote; frontend backend; debug release; dev prod;
development production; manual automatic; explicit implicit; mutable immutable; static dynamic;
strong weak; strict lenient; valid invalid; legal illegal; safe unsafe; safe dangerous; secure
insecure; possible impossible; correct incorrect; right wrong; same different; similar
different; equal unequal; even odd; always never; all none; everything nothing; everyone nobody;
more less; more fewer; many few; include omit; keep delete; keep remove; save delete; create
delete; create destroy; insert delete; allocate free; alloc free; attach detach; bind unbind;
link unlink; merge split; join split; combine split; expand collapse; maximize minimize;
maximise minimise; wake sleep; awake asleep; asleep awake; alive dead; live die; birth death;
born died; agree disagree; like hate; want avoid; eat avoid; accept refuse; admit deny; confirm
deny; pay refund; charge refund; hire fire; hired fired; employ dismiss; promote demote; start
finish; begin end; beginning end; start end; open shut; appear disappear; visible invisible;
clockwise counterclockwise; clockwise anticlockwise; inhale exhale; import export; win loss;
import export; heat cool; heating cooling; rise fall; rising falling; grow shrink; growing
shrinking; inflate deflate; inflation deflation; overestimate underestimate; overweight
underweight; overpaid underpaid; overrated underrated; pro anti; for against; legal illegal;
formal informal; formal casual; polite rude; active inactive; activate deactivate;
cause effect; causes effects; strength weakness; strengths weaknesses; supply demand; plural
singular; single married; permanent temporary; acute chronic; benign malignant; gross net; fixed
variable; fixed adjustable; bull bear; bullish bearish; asset liability; assets liabilities;
income expense; income expenses; surplus deficit; absolute relative; prefix suffix; leading
trailing; global local; stateful stateless; wired wireless; lazy eager; whitelist blacklist;
allowlist denylist; raw cooked; crispy soggy; tender tough; praise criticize; praise criticise;
support oppose; absorb reflect; strengthen weaken; lengthen shorten; brighten darken; soften
harden; widen narrow; dominant recessive; anode cathode; oxidation reduction; oxidize reduce;
acidic alkaline; acid base; aerobic anaerobic; plaintiff defendant; employer employee; employers
employees; landlord tenant; landlords tenants; buyer seller; buyers sellers; lender borrower;
predator prey; victory defeat; winner loser; guilty innocent; mild severe; rare common; major
minor; majority minority; junior senior; superior inferior; optimistic pessimistic; amateur
professional; natural artificial; natural synthetic; dense sparse; rigid flexible; dehydrate
hydrate; dehydrated hydrated; arrive leave; attack defend; offense defense; offensive defensive;
domestic international; domestic foreign; mandatory optional; compulsory optional; required
optional; remember forget; reward punish; reward punishment; victory loss; survive die; survived
died; introvert extrovert; introverted extroverted; teacher student; host guest; upstream
downstream; ascend descend; accelerate decelerate;
appreciate depreciate; appreciation depreciation; concave convex; convex concave; ionic covalent;
exothermic endothermic; prokaryotic eukaryotic; vegan carnivore; hydrophobic hydrophilic;
"""


_ANTONYM_POLES = """
enable activate turnon switchon allow permit / disable deactivate turnoff switchoff;
allow allowed permit permitted let / forbid forbidden prohibit prohibited ban banned block
blocked deny denied disallow disallowed;
legal lawful / illegal unlawful forbidden banned;
include includes included including add keep / exclude excludes excluded excluding omit leaveout
remove drop skip;
increase raise boost grow turnup enlarge bigger larger / decrease reduce lower cut shrink
turndown smaller;
more higher bigger larger greater / less fewer lower smaller lesser;
most highest biggest largest greatest / least fewest lowest smallest;
big large huge / small little tiny;
easy easier simple simpler / hard harder difficult tricky;
strong stronger / weak weaker mild milder;
fast faster quick quicker quickly rapid / slow slower slowly;
cheap cheaper inexpensive affordable / expensive pricier costly dear;
safe safer harmless healthy healthier / unsafe dangerous harmful toxic poisonous risky unhealthy;
good better best great decent / bad worse worst poor terrible;
pro pros advantage advantages benefit benefits upside upsides plus / con cons disadvantage
disadvantages drawback drawbacks downside downsides risk risks minus challenge challenges danger
dangers;
before prior earlier / after later;
accept accepting agree approve / decline declining turndown reject refuse;
show showing display unhide reveal / hide hiding conceal;
upload send / download receive;
encrypt encode lock / decrypt decode unlock;
compress zip pack archive / decompress unzip unpack extract;
connect pair attach / disconnect unpair detach;
subscribe join follow / unsubscribe leave unfollow;
start begin launch setup / stop end finish quit;
open / close closed shut block;
thicken thick / thin;
exist exists present / missing;
win won beat / lose lost;
buy bought purchase / sell sold;
rent / buy own;
gain / lose shed;
add create / delete remove;
hang mount / takedown unmount;
melt thaw / freeze;
float / sink;
warm warmer heat hot / cool cooler cold chill;
rise rises / fall sink;
happy / sad;
formal / informal casual;
active / passive;
ascending / descending;
uppercase / lowercase;
north / south;
east / west;
indoors indoor inside / outdoors outdoor outside;
sun sunny / shade shady;
rational / irrational;
normal / abnormal unusual;
positive / negative;
longer / shorter;
long longer more over / short shorter less under;
high higher highest most / low lower lowest least;
attract attracts attracting / repel repels repelling deter;
tighten tight / loosen loose;
converge converging converges / diverge diverging diverges;
donor donate give giver / recipient receive receiver;
edible eat eatable safe harmless / poisonous toxic inedible;
appropriate suitable / inappropriate unsuitable dangerous;
work works working succeed / fail fails failing broken;
chewy chewier soft softer / crispy crispier crunchy crunchier crisp hard;
binding enforceable valid / void unenforceable invalid;
install setup add / remove uninstall strip delete;
add insert / strip remove;
effective / ineffective useless;
heavy heavier / light lighter;
wide wider / narrow narrower;
thick thicker / thin thinner;
deep deeper / shallow shallower;
ripe / unripe;
sweet / sour bitter savory;
"""
"""Poles of an opposition, each a set of synonyms: every word of one pole opposes every word of
the other, so a reworded flip ("turn on" against "disable") is caught like a plain one."""

OPPOSED_PREFIXES = (
    ("over", "under"), ("hyper", "hypo"), ("pre", "post"), ("up", "down"), ("in", "out"),
    ("im", "ex"), ("in", "ex"), ("in", "de"), ("endo", "exo"), ("inter", "intra"),
    ("macro", "micro"), ("ac", "de"), ("ap", "de"), ("as", "de"),
)  # fmt: skip
"""Prefixes that oppose each other on the same rest: overestimate/underestimate,
hypertension/hypotension, pretax/posttax, upload/download, inbound/outbound, import/export,
include/exclude, increase/decrease, endothermic/exothermic, accelerate/decelerate,
appreciate/depreciate, ascend/descend. Two words that differ only so ask other things even where
they are not opposites (income/outcome, assign/design)."""
NEGATING_PREFIXES = ("un", "non", "dis", "in", "im", "il", "ir")
"""A word that is another word with one of these in front is its opposite (unblock/block,
irrational/rational), within the limits below."""
PREFIX_NOT_OPPOSITE = frozenset(
    """discount discover dismiss disease display dispose dispatch discuss dissolve discard discord
    disclose dissent distill dispense disperse discharge unit unite united union universe unless
    until
    """.split()
)
"""Words that only look prefixed ("disease" is not the opposite of "ease")."""
ADJECTIVE_ENDINGS = ("ible", "able", "ive", "ent", "ant", "ect", "al", "ete", "ure", "ite",
                     "ble", "ar", "ate", "id", "ed", "ful")  # fmt: skip
"""After in-/im-/il-/ir- the opposite is only taken for adjectives (invalid/valid, never
install/stall or import/port)."""


def _antonym_map(raw: str) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for chunk in raw.replace("\n", " ").split(";"):
        words = chunk.split()
        if len(words) != 2:
            continue
        a, b = words
        for x, y in ((a, b), (b, a)):
            out.setdefault(stem(x), set()).add(stem(y))
    return {k: frozenset(v) for k, v in out.items()}


def _pole_map(raw: str, into: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    out = {k: set(v) for k, v in into.items()}
    for chunk in raw.replace("\n", " ").split(";"):
        if "/" not in chunk:
            continue
        left, right = (side.split() for side in chunk.split("/", 1))
        for a in left:
            for b in right:
                if stem(a) != stem(b):
                    out.setdefault(stem(a), set()).add(stem(b))
                    out.setdefault(stem(b), set()).add(stem(a))
    return {k: frozenset(v) for k, v in out.items()}


DIRECTION_CUES = frozenset({"to", "from", "into", "than", "onto", "toward", "towards", "->", "=>"})
SYMMETRIC_CUES = frozenset({"and", "vs", "versus", "or", "between", "&", "compare", "compared"})

MONTHS = (
    "january february march april may june july august september october november december".split()
)
MONTH_ABBR = {m[:3]: m for m in MONTHS} | {"sept": "september"}
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
RELATIVE_TIME = frozenset(
    """today tomorrow yesterday tonight weekend weekday daily weekly monthly yearly annually
    hourly morning afternoon evening night noon midnight am pm next last previous this""".split()
)

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12, "single": 1, "double": 2,
    "triple": 3, "twice": 2, "once": 1, "half": 0.5, "quarter": 0.25, "couple": 2,
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th",
}  # fmt: skip

UNITS = frozenset(
    """
    mm cm m km meter meters metre metres kilometer kilometers kilometre kilometres mile miles
    inch inches in ft foot feet yard yards mg g kg gram grams kilogram kilograms lb lbs pound pounds
    oz ounce ounces ton tons tonne tonnes ml l liter liters litre litres gallon gallons cup cups
    tablespoon tablespoons tbsp teaspoon teaspoons tsp pint pints quart quarts
    b kb mb gb tb pb kib mib gib tib byte bytes kilobyte megabyte megabytes gigabyte gigabytes
    terabyte terabytes bit bits kbps mbps gbps hz khz mhz ghz
    ms millisecond milliseconds sec secs second seconds min mins minute minutes h hr hrs hour hours
    day days week weeks month months year years decade decades century centuries night nights
    c f celsius fahrenheit kelvin degree degrees percent percentage pct psi bar kpa pa
    px pixel pixels dpi pt em rem vh vw k cpu cpus core cores thread threads replica replicas
    usd eur gbp jpy inr cny aud cad chf dollar dollars euro euros pound sterling yen rupee rupees
    cent cents calorie calories kcal kj watt watts kw kwh volt volts amp amps mah
    am pm utc gmt est pst cet ist
    """.split()
)

CURRENCY_SIGNS = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr"}

TECH = frozenset(
    """
    python python2 python3 java javascript js typescript ts go golang rust c c++ cpp c# csharp f#
    ruby php perl lua scala kotlin swift objective-c dart haskell elixir erlang clojure julia r
    matlab fortran cobol bash zsh fish powershell sh shell sql tsql plsql nosql graphql html css
    scss sass less json yaml yml toml xml csv markdown latex wasm webassembly solidity zig nim ocaml
    react reactjs vue vuejs angular angularjs svelte sveltekit nextjs next.js nuxt ember jquery
    backbone solid solidjs astro remix gatsby redux mobx zustand tailwind bootstrap bulma
    node node.js nodejs deno bun express fastify koa nestjs django flask fastapi pyramid tornado
    rails laravel symfony spring springboot quarkus micronaut asp.net .net dotnet blazor gin echo
    fiber actix axum rocket phoenix sinatra
    pandas polars numpy scipy sklearn scikit pytorch torch tensorflow keras jax xgboost
    lightgbm huggingface transformers spacy nltk opencv matplotlib seaborn plotly ggplot ggplot2
    dplyr tidyverse spark pyspark hadoop hive flink kafka airflow dbt celery sidekiq rq
    pytest unittest jest mocha vitest junit rspec cypress selenium playwright
    npm yarn pnpm pip pipenv poetry conda uv cargo maven gradle sbt composer gem bundler nuget
    docker podman kubernetes k8s helm nomad terraform pulumi ansible chef puppet vagrant
    jenkins github gitlab bitbucket circleci travis
    aws azure gcp gce ec2 s3 lambda cloudflare heroku vercel netlify digitalocean firebase supabase
    mysql postgres postgresql sqlite mariadb oracle mssql mongodb mongo redis memcached cassandra
    dynamodb elasticsearch opensearch neo4j clickhouse snowflake bigquery redshift duckdb
    nginx apache caddy traefik haproxy envoy istio linkerd prometheus grafana datadog splunk
    linux ubuntu debian fedora centos rhel arch alpine windows macos osx mac ios android
    http https ftp ssh tcp udp grpc websocket rest soap
    iphone ipad pixel galaxy chrome firefox safari edge opera vscode vim neovim emacs intellij
    pycharm eclipse xcode excel sheets tableau powerbi word powerpoint outlook gmail slack teams
    zoom notion jira confluence trello figma photoshop wordpress shopify stripe paypal venmo
    openai chatgpt gpt claude llama gemini mistral ollama langchain
    axios fetch requests httpx urllib curl wget git svn mercurial
    english spanish french german italian portuguese dutch russian chinese mandarin cantonese
    japanese korean arabic hindi bengali urdu turkish polish swedish norwegian danish finnish
    greek hebrew thai vietnamese indonesian malay tagalog swahili ukrainian czech hungarian
    romanian persian farsi latin
    """.split()
)
"""Languages, frameworks, tools and products: one replaced by another asks a different question."""


NEGATION_IDIOMS = frozenset(
    """only just forget hesitate fail worry mind understand know sure idea matter mention
    """.split()
)
"""Words after which a negation is an idiom or a frame, not a polarity: "not only", "don't
forget", "I don't understand why ...", "not sure how to ...", "no idea how ..."."""
TECH_ALIASES = {
    "js": "javascript", "ts": "typescript", "k8s": "kubernetes", "postgres": "postgresql",
    "golang": "go", "py": "python", "python3": "python", "nodejs": "node", "node.js": "node",
    "reactjs": "react", "vuejs": "vue", "angularjs": "angular", "mongo": "mongodb",
    "osx": "macos", "cpp": "c++", "csharp": "c#", "dotnet": ".net", "yml": "yaml",
    "sklearn": "scikit", "torch": "pytorch", "tf": "tensorflow", "gcp": "google cloud",
}  # fmt: skip
ROMAN = {"ii": "2", "iii": "3", "iv": "4", "vi": "6", "vii": "7", "viii": "8", "ix": "9"}


def stem(word: str) -> str:
    """A small suffix stripper: enough to match plural/verb forms, never a dictionary lookup."""
    w = word
    if len(w) <= 3 or not w.isalpha():
        return w
    for suf, rep in (
        ("ies", "y"),
        ("sses", "ss"),
        ("ing", ""),
        ("edly", ""),
        ("ed", ""),
        ("ly", ""),
        ("es", ""),
        ("s", ""),
    ):
        if w.endswith(suf) and len(w) - len(suf) >= 3 and not w.endswith("ss"):
            w = w[: -len(suf)] + rep
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]  # running -> runn -> run
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]  # remove/removing, serialize/serializing
    return w


def word_stem(t: str) -> str:
    """The stem a token is compared by: tech names and non-words stay as they are."""
    return t if t in TECH or not t.isalpha() else stem(t)


def edit_close(a: str, b: str) -> bool:
    """True for a likely typo or abbreviation of the same word (pyhton/python, dict/dictionary)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if min(la, lb) >= 3 and (a.startswith(b) or b.startswith(a)):
        return True
    if abs(la - lb) > 2 or min(la, lb) < 4:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]:
            return a[diff[1]] == b[diff[0]]  # two neighbours transposed ("teh"), no anagram
    # one edit away
    if la == lb:
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    s, t = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(s) and s[i] == t[i]:
        i += 1
    return s[i:] == t[i + 1 :] or s[i:] == t[i + 2 :]


BE = frozenset({"is", "are", "was", "were", "be", "been", "being", "get", "gets", "got"})
IRREGULAR_PARTICIPLES = frozenset(
    """made done used set put held sold built sent paid given taken known shown written said
    found kept left lost read run seen told thought understood chosen driven eaten broken""".split()
)
"""With :data:`BE`, what marks a passive ("is mentioned"): there word order says little."""

DEICTIC = frozenset(
    {
        "this",
        "following",
        "these",
        "above",
        "attached",
        "given",
        "below",
        "image",
        "picture",
        "question",
    }
)
"""Words that point at something outside the prompt ("this image"): the prompt is not the
whole question."""

PERSONS = (
    frozenset({"i", "me", "my", "mine", "myself"}),
    frozenset({"you", "your", "yours", "yourself", "u", "ur"}),
    frozenset({"we", "us", "our", "ours"}),
)
"""First, second and first-plural person: "my code" and "your code" may want other answers."""

ANTONYMS = _pole_map(_ANTONYM_POLES, _antonym_map(_ANTONYMS_RAW))
"""Stem -> the stems of its opposites, both ways round."""


def _pole_mates(raw: str) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for chunk in raw.replace("\n", " ").split(";"):
        for side in chunk.split("/"):
            words = {stem(w) for w in side.split()}
            for w in words:
                out.setdefault(w, set()).update(words - {w})
    return {k: frozenset(v) for k, v in out.items() if v}


_SYNONYM_GROUPS = """
kid kids child children; baby infant newborn; movie movies film films; show series; car vehicle
auto; buy purchase; fix repair; job career occupation; doctor physician; teacher professor
instructor tutor; student pupil; begin start; finish end complete; help assist; choose pick
select; display show; use utilize; need require; make create build; remove delete erase; error
bug issue problem; house home; phone smartphone mobile cellphone; picture photo image; app
application; laptop notebook computer; money cash funds; price cost; eat consume; trip journey
vacation holiday; shop store; sick ill; illness disease; medicine medication; smart intelligent
clever; easy simple; hard difficult tough; cheap inexpensive affordable; expensive costly
pricey; learn study; speak talk; answer reply respond; website site webpage; folder directory;
file document; exercise workout; aquarium tank; stomach belly tummy; couch sofa; fridge
refrigerator; bathroom restroom toilet; garbage trash rubbish; lawyer attorney; fast quick
rapid; big large huge; small little tiny; often frequently; maybe perhaps; enough sufficient;
guide tutorial; tip tips advice; mistake error; limit limits cap; recommend suggest; similar
like; method technique approach way; explain describe; example sample; boss manager
supervisor; salary pay wage wages; cv resume; bike bicycle; plane airplane aircraft flight;
lift elevator; holiday vacation; flat apartment; pants trousers; cookie biscuit; soccer football
"""
"""Words that ask the same in most prompts: one said for the other is no swap ("screen time for
kids" / "for children"). General English, not taken from any pair file."""


def _synonym_map(raw: str) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for chunk in raw.replace("\n", " ").split(";"):
        words = {stem(w) for w in chunk.split()}
        for w in words:
            out.setdefault(w, set()).update(words - {w})
    return {k: frozenset(v) for k, v in out.items() if v}


SYNONYMS = _synonym_map(_SYNONYM_GROUPS)
"""Stem -> the stems of words that usually mean the same (:data:`_SYNONYM_GROUPS`)."""

POLE_MATES = _pole_mates(_ANTONYM_POLES)
"""Stem -> the stems on its own side of an opposition ("eat" -> "safe", "edible"): "not eat"
and "safe" talk about the same thing."""

UNIT_ALIASES = {
    "min": "minute", "mins": "minute", "minute": "minute", "minutes": "minute",
    "sec": "second", "secs": "second", "s": "second", "second": "second", "seconds": "second",
    "h": "hour", "hr": "hour", "hrs": "hour", "hour": "hour", "hours": "hour",
    "ms": "millisecond", "millisecond": "millisecond", "milliseconds": "millisecond",
    "kg": "kg", "kilogram": "kg", "kilograms": "kg", "kilo": "kg", "kilos": "kg",
    "g": "gram", "gram": "gram", "grams": "gram", "mg": "mg", "lb": "pound", "lbs": "pound",
    "pound": "pound", "pounds": "pound", "km": "km", "kilometer": "km", "kilometers": "km",
    "kilometre": "km", "kilometres": "km", "m": "meter", "meter": "meter", "meters": "meter",
    "metre": "meter", "metres": "meter", "mi": "mile", "mile": "mile", "miles": "mile",
    "ft": "foot", "foot": "foot", "feet": "foot", "in": "inch", "inch": "inch",
    "inches": "inch", "l": "liter", "liter": "liter", "liters": "liter", "litre": "liter",
    "litres": "liter", "ml": "ml", "tbsp": "tablespoon", "tablespoon": "tablespoon",
    "tablespoons": "tablespoon", "tsp": "teaspoon", "teaspoon": "teaspoon",
    "teaspoons": "teaspoon", "oz": "ounce", "ounce": "ounce", "ounces": "ounce",
    "percent": "percent", "pct": "percent", "percentage": "percent",
    "usd": "usd", "dollar": "usd", "dollars": "usd", "eur": "eur", "euro": "eur",
    "euros": "eur", "gbp": "gbp", "yen": "jpy", "jpy": "jpy", "rupee": "inr", "rupees": "inr",
    "gb": "gb", "gigabyte": "gb", "gigabytes": "gb", "mb": "mb", "megabyte": "mb",
    "megabytes": "mb", "tb": "tb", "terabyte": "tb", "terabytes": "tb",
    "c": "celsius", "celsius": "celsius", "f": "fahrenheit", "fahrenheit": "fahrenheit",
    "yr": "year", "yrs": "year", "year": "year", "years": "year", "wk": "week", "wks": "week",
    "week": "week", "weeks": "week", "day": "day", "days": "day",
}  # fmt: skip
"""One spelling per unit, so "18 mins" and "18 minutes" are the same quantity."""

PRONOUN_ONE_AFTER = frozenset(
    """quick this that the which each every any no some another other a an only right wrong new
    old better best good last next first little big same favourite favorite main other's""".split()
)
"""After these, "one" is a pronoun ("quick one", "which one"), not the number 1."""
