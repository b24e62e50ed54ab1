"""Word lists for ``gen_pairs.py``: named things by type, and the surface rewrites paraphrases use.

Kept apart from the task list so that each file holds one thing. Every list is plain data; the
generator draws from them with a seeded random generator, so the output is the same on every
machine.
"""

from __future__ import annotations

ENTITIES: dict[str, list[str]] = {
    "country": """
        France, Germany, Italy, Spain, Portugal, Japan, China, India, Brazil, Mexico, Canada,
        Australia, Egypt, Morocco, Kenya, Nigeria, Vietnam, Thailand, Indonesia, Turkey, Greece,
        Norway, Sweden, Poland, Argentina, Chile, Peru, Colombia, Ireland, Iceland, New Zealand,
        South Korea, the Netherlands, Belgium, Austria, Switzerland, Croatia, Hungary""",
    "city": """
        Paris, London, Rome, Madrid, Berlin, Lisbon, Tokyo, Kyoto, Seoul, Bangkok, Sydney,
        Melbourne, Toronto, Vancouver, Chicago, Boston, Seattle, Denver, Miami, Austin, New
        York, San Francisco, Los Angeles, Barcelona, Prague, Vienna, Budapest, Amsterdam,
        Dublin, Edinburgh, Istanbul, Athens, Cairo, Marrakech, Buenos Aires, Mexico City,
        Singapore, Dubai, Oslo, Copenhagen, Munich, Milan, Florence, Venice, Porto, Krakow""",
    "person": """
        Albert Einstein, Marie Curie, Isaac Newton, Charles Darwin, Nikola Tesla, Ada Lovelace,
        Leonardo da Vinci, Napoleon, Julius Caesar, Cleopatra, Abraham Lincoln, Winston
        Churchill, Mahatma Gandhi, Nelson Mandela, Queen Victoria, Galileo, Aristotle,
        Confucius, William Shakespeare, Jane Austen, Mark Twain, Frida Kahlo, Vincent van Gogh,
        Mozart, Beethoven, Martin Luther King, Joan of Arc, Genghis Khan, Alan Turing, Rosalind
        Franklin""",
    "company": """
        Apple, Microsoft, Google, Amazon, Tesla, Netflix, Samsung, Sony, Nike, Adidas, IKEA,
        Toyota, Honda, Ford, Starbucks, McDonald's, Walmart, Target, Costco, Uber, Airbnb,
        Spotify, Disney, Intel, Nvidia, Oracle, IBM, Shopify, PayPal, Visa""",
    "app": """
        WhatsApp, Instagram, TikTok, Facebook, Snapchat, Telegram, Signal, Slack, Discord, Zoom,
        Teams, Outlook, Gmail, Spotify, Netflix, YouTube, Chrome, Firefox, Safari, Excel, Google
        Sheets, Notion, Trello, Dropbox, OneDrive, Photoshop, Canva, Duolingo, Strava, LinkedIn""",
    "plang": """
        Python, JavaScript, TypeScript, Java, C#, C++, Go, Rust, Ruby, PHP, Kotlin, Swift,
        Scala, Haskell, Elixir, Perl, Lua, R, Julia, Dart""",
    "lib": """
        React, Vue, Angular, Svelte, Django, Flask, FastAPI, Rails, Laravel, Spring Boot,
        Express, pandas, NumPy, PyTorch, TensorFlow, scikit-learn, jQuery, Next.js, Tailwind,
        Bootstrap""",
    "db": """
        PostgreSQL, MySQL, SQLite, MongoDB, Redis, Cassandra, DynamoDB, Elasticsearch, Oracle,
        SQL Server, MariaDB, Snowflake, BigQuery, ClickHouse""",
    "tool": """
        Docker, Kubernetes, Terraform, Ansible, Jenkins, GitHub Actions, GitLab CI, nginx,
        Apache, Helm, Prometheus, Grafana, Vagrant, systemd, cron""",
    "os": "Windows, macOS, Ubuntu, Debian, Fedora, Arch Linux, Android, iOS, ChromeOS, CentOS",
    "disease": """
        diabetes, asthma, migraine, arthritis, flu, COVID-19, pneumonia, anemia, eczema,
        psoriasis, bronchitis, hypertension, gout, shingles, measles, malaria, celiac disease,
        Lyme disease, tonsillitis, sinusitis""",
    "drug": """
        ibuprofen, paracetamol, aspirin, metformin, lisinopril, amoxicillin, omeprazole,
        sertraline, atorvastatin, prednisone, loratadine, melatonin, insulin, warfarin,
        levothyroxine, cetirizine""",
    "team": """
        the Lakers, the Celtics, the Yankees, the Red Sox, Real Madrid, Barcelona, Manchester
        United, Liverpool, Chelsea, Arsenal, Bayern Munich, Juventus, the Patriots, the Packers,
        the Warriors, the Bulls, Ajax, Boca Juniors""",
    "sport": """
        tennis, football, basketball, baseball, cricket, rugby, volleyball, golf, hockey,
        badminton, table tennis, swimming, cycling, skiing, boxing, climbing""",
    "food": """
        salmon, chicken, tofu, beef, pork, lamb, shrimp, cod, eggplant, zucchini, cauliflower,
        broccoli, potatoes, lentils, chickpeas, mushrooms, spinach, quinoa, rice, pasta""",
    "dish": """
        lasagna, risotto, paella, ramen, pad thai, tacos, curry, moussaka, goulash, shakshuka,
        pho, biryani, carbonara, chili, falafel, gnocchi, pancakes, banana bread, apple pie,
        cheesecake, brownies, sourdough bread, hummus, guacamole""",
    "fruit": """
        apples, bananas, grapes, strawberries, blueberries, mangoes, oranges, lemons, peaches,
        pears, cherries, avocados, pineapples, kiwis, watermelons""",
    "plant": """
        tomatoes, basil, roses, orchids, lavender, peppers, cucumbers, strawberries, mint,
        succulents, ferns, tulips, sunflowers, carrots, lettuce, blueberries""",
    "animal": """
        cats, dogs, rabbits, hamsters, guinea pigs, parrots, ferrets, goldfish, turtles, horses,
        chickens, bearded dragons""",
    "pet": """
        cat, dog, rabbit, hamster, guinea pig, parrot, ferret, goldfish, turtle, horse, puppy,
        kitten""",
    "breed": """
        golden retriever, labrador, beagle, German shepherd, poodle, border collie, husky,
        dachshund, bulldog, chihuahua, corgi, pug""",
    "car": """
        Toyota Corolla, Honda Civic, Ford Focus, Tesla Model 3, Volkswagen Golf, BMW 3 Series,
        Nissan Leaf, Subaru Outback, Mazda CX-5, Jeep Wrangler, Kia Sportage, Hyundai Tucson""",
    "book": """
        Pride and Prejudice, Moby-Dick, The Great Gatsby, War and Peace, Don Quixote, Hamlet,
        Macbeth, 1984, Frankenstein, Dracula, Jane Eyre, Middlemarch, Ulysses, The Odyssey,
        Crime and Punishment, Brave New World""",
    "language": """
        Spanish, French, German, Italian, Portuguese, Japanese, Korean, Mandarin, Arabic,
        Russian, Dutch, Greek, Turkish, Polish, Swedish, Hindi""",
    "instrument": """
        guitar, piano, violin, drums, cello, flute, saxophone, ukulele, trumpet, bass, harp,
        clarinet""",
    "planet": "Mercury, Venus, Mars, Jupiter, Saturn, Uranus, Neptune",
    "element": """
        carbon, oxygen, nitrogen, iron, gold, silver, copper, sodium, helium, uranium, calcium,
        zinc""",
    "event": """
        the French Revolution, the Industrial Revolution, World War I, World War II, the Cold
        War, the Renaissance, the Reformation, the American Civil War, the fall of Rome, the
        Russian Revolution, the Great Depression, the moon landing""",
    "bank": """
        Chase, Wells Fargo, Barclays, HSBC, Santander, Citibank, Revolut, Monzo, ING, Deutsche
        Bank, Bank of America, Capital One""",
    "airline": """
        Lufthansa, Ryanair, easyJet, Delta, United, American Airlines, Emirates, Qatar
        Airways, KLM, Air France, British Airways, Southwest""",
    "museum": """
        the Louvre, the Prado, the British Museum, the Met, the Uffizi, the Rijksmuseum, the
        Vatican Museums, MoMA, the Hermitage, the Guggenheim""",
    "state": """
        California, Texas, Florida, New York, Ohio, Oregon, Washington, Colorado, Georgia,
        Illinois, Ontario, Quebec, Bavaria, Catalonia, Queensland, Scotland""",
    "job": """
        nurse, teacher, software engineer, accountant, electrician, plumber, pharmacist, lawyer,
        graphic designer, data analyst, paramedic, architect""",
    "fabric": "wool, silk, cotton, linen, leather, suede, denim, polyester, cashmere",
    "subject": """
        algebra, calculus, chemistry, physics, biology, statistics, geometry, economics,
        philosophy, psychology, trigonometry, linear algebra""",
    "device": """
        iPhone, iPad, MacBook, Pixel phone, Galaxy phone, Kindle, Apple Watch, Fitbit, AirPods,
        Chromebook, PS5, Xbox, Nintendo Switch, smart TV""",
}
"""Named things by type: a hard negative swaps one for another of the same type."""

ENTITY_LISTS: dict[str, tuple[str, ...]] = {
    k: tuple(x.strip() for x in v.replace("\n", " ").split(",") if x.strip())
    for k, v in ENTITIES.items()
}

CHOICES: dict[str, tuple[str, ...]] = {
    "month": (
        *"January February March April May June".split(),
        *"July August September October November December".split(),
    ),
    "weekday": tuple("Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()),
    "pyver": ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13"),
    "nodever": ("16", "18", "20", "22"),
    "javaver": ("8", "11", "17", "21"),
    "iosver": ("15", "16", "17", "18"),
    "clock": ("5 am", "6 am", "7 am", "8 am", "9 pm", "10 pm", "11 pm", "noon", "midnight"),
    "season": ("spring", "summer", "autumn", "winter"),
    "daypart": ("morning", "evening", "night", "afternoon"),
}
"""Closed lists rendered as dates, versions or times: a change is a number/date change."""

NUMBER_WORDS = {
    1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
    9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 15: "fifteen", 20: "twenty",
    30: "thirty", 40: "forty", 50: "fifty", 100: "a hundred",
}  # fmt: skip

PREFIXES = (
    "Hi, ", "Hey! ", "Hello, ", "Quick question: ", "I was wondering, ", "So, ", "Ok so ",
    "Hi there. ", "Question: ", "Hey, quick one: ", "Help! ", "Good morning! ", "Sorry if this is "
    "basic, but ", "I have a question. ", "Can you help? ",
)  # fmt: skip
SUFFIXES = (
    " Thanks!", " thanks in advance", " Thank you.", " please", " Any help is appreciated.",
    " thx", " Thanks a lot.", " (asking for a friend)", " Cheers.", " ty", " Thanks so much!",
)  # fmt: skip

CONSTRAINTS = (
    "in under 100 words", "for a complete beginner", "on a tight budget", "for kids",
    "in bullet points", "as a table", "for a small business", "without spending any money",
    "in less than an hour", "for a family of four", "for seniors", "while traveling abroad",
    "using only free tools", "for a vegetarian", "with a bad knee", "on a Mac", "in the UK",
    "for an exam tomorrow", "in a formal tone", "for a wedding", "in a rented flat",
    "with step-by-step code", "for a large team", "in a rural area", "for a first date",
    "if I have allergies", "with a disability", "as a student", "during Ramadan",
    "for a 5-minute presentation", "in a small apartment", "for someone over 60",
)  # fmt: skip
"""Conditions an answer must meet: added to one side, they make a hard negative (the stored
answer ignores them), unlike filler and politeness."""

ABBREVIATIONS = {
    "you": "u", "your": "ur", "please": "pls", "with": "w/", "without": "w/o", "and": "&",
    "information": "info", "because": "bc", "for example": "e.g.", "minutes": "mins",
    "application": "app", "documentation": "docs", "configuration": "config",
    "database": "db", "thanks": "thx", "people": "ppl", "something": "sth", "to": "2",
    "before": "b4", "are": "r", "tomorrow": "tmrw", "message": "msg", "repository": "repo",
}  # fmt: skip
"""What casual prompts shorten (one side of a paraphrase may use them)."""

SYNONYMS = (
    ("fix", "repair"), ("quickly", "fast"), ("buy", "purchase"), ("car", "vehicle"),
    ("kids", "children"), ("photos", "pictures"), ("big", "large"), ("easy", "simple"),
    ("begin", "start"), ("choose", "pick"), ("cheap", "inexpensive"), ("trip", "journey"),
    ("doctor", "physician"), ("error", "mistake"), ("find out", "figure out"),
    ("get rid of", "eliminate"), ("tips", "advice"), ("ideas", "suggestions"), ("movie", "film"),
    ("phone", "smartphone"), ("laptop", "notebook"), ("holiday", "vacation"),
    ("boss", "manager"), ("mistakes", "errors"), ("fastest", "quickest"), ("good", "decent"),
    ("explain", "describe"), ("summarize", "sum up"), ("write", "compose"),
)  # fmt: skip
"""Words a paraphrase may swap without changing what is asked."""
