"""Word lists the rules lean on: jobs, diets, pets, family roles, nationalities, languages."""

from __future__ import annotations

JOBS = frozenset("""
engineer developer programmer designer nurse doctor physician surgeon dentist teacher professor
lecturer student lawyer attorney solicitor accountant analyst scientist researcher manager
consultant architect chef cook baker barista waiter waitress bartender pilot driver mechanic
electrician plumber carpenter writer author journalist editor photographer artist musician singer
actor actress paramedic firefighter officer cop soldier farmer pharmacist therapist psychologist
psychiatrist veterinarian vet librarian cashier clerk salesperson recruiter entrepreneur founder
ceo cto cfo intern freelancer translator interpreter tutor coach trainer receptionist secretary
assistant administrator technician economist banker broker realtor investor marketer producer
director filmmaker animator illustrator sysadmin nanny caregiver carer midwife dietitian
nutritionist physiotherapist optometrist surveyor tailor hairdresser barber stylist janitor
cleaner courier chemist physicist biologist mathematician statistician historian curator
instructor postdoc housewife homemaker paralegal copywriter strategist planner counselor
counsellor dj composer dancer comedian librarian archaeologist geologist astronomer sailor
fisherman butcher florist jeweler jeweller welder machinist contractor builder landscaper
gardener scrum owner lead principal partner associate officer coordinator specialist supervisor
foreman tester inspector auditor underwriter actuary programmer coder webdeveloper pharmacologist
radiologist anesthesiologist anaesthetist cardiologist neurologist pediatrician paediatrician
surgeon medic emt""".split())

# A job phrase whose last word is one of these is a trait or a taste, not a job.
NOT_JOBS = frozenset("""
fan lover person owl believer beginner vegetarian vegan pescatarian flexitarian bit lot little
fool mess wreck optimist pessimist perfectionist introvert extrovert minimalist atheist
""".split())

DIETS = ("vegetarian", "vegan", "pescatarian", "pescetarian", "flexitarian", "keto", "paleo",
         "gluten-free", "gluten free", "dairy-free", "dairy free", "kosher", "halal",
         "plant-based", "plant based", "carnivore", "raw vegan", "lacto-vegetarian")

SPECIES: dict[str, str] = {
    "dog": "dog", "puppy": "dog", "pup": "dog", "doggo": "dog",
    "cat": "cat", "kitten": "cat", "kitty": "cat",
    "hamster": "hamster", "rabbit": "rabbit", "bunny": "rabbit", "parrot": "parrot",
    "budgie": "bird", "bird": "bird", "canary": "bird", "cockatiel": "bird",
    "goldfish": "fish", "fish": "fish", "turtle": "turtle", "tortoise": "tortoise",
    "snake": "snake", "lizard": "lizard", "gecko": "lizard", "iguana": "lizard",
    "horse": "horse", "pony": "horse", "guinea pig": "guinea pig", "ferret": "ferret",
    "rat": "rat", "mouse": "mouse", "chicken": "chicken", "hedgehog": "hedgehog",
    "chinchilla": "chinchilla", "gerbil": "gerbil",
    # dog and cat breeds stand for their species
    "greyhound": "dog", "labrador": "dog", "lab": "dog", "retriever": "dog", "poodle": "dog",
    "beagle": "dog", "terrier": "dog", "husky": "dog", "corgi": "dog", "dachshund": "dog",
    "bulldog": "dog", "pug": "dog", "shepherd": "dog", "german shepherd": "dog",
    "collie": "dog", "spaniel": "dog", "chihuahua": "dog", "rottweiler": "dog",
    "doberman": "dog", "whippet": "dog", "schnauzer": "dog", "shiba": "dog",
    "golden retriever": "dog", "border collie": "dog", "pit bull": "dog", "pitbull": "dog",
    "siamese": "cat", "persian": "cat", "maine coon": "cat", "ragdoll": "cat",
    "sphynx": "cat", "bengal": "cat", "tabby": "cat",
}
PET_ADJECTIVES = ("rescue|rescued|little|new|old|young|big|small|senior|black|white|ginger|"
                  "grey|gray|brown|adorable|cute|lazy|sweet|fluffy|crazy|baby|pet|beautiful")

ROLES = frozenset({
    "sister", "brother", "mom", "mother", "mum", "dad", "father", "wife", "husband", "partner",
    "boyfriend", "girlfriend", "fiancé", "fiance", "fiancée", "fiancee", "son", "daughter",
    "kid", "child", "baby", "grandma", "grandmother", "grandpa", "grandfather", "granddaughter",
    "grandson", "aunt", "uncle", "cousin", "niece", "nephew", "friend", "best friend",
    "roommate", "flatmate", "housemate", "neighbour", "neighbor", "boss", "manager",
    "colleague", "coworker", "co-worker", "stepmom", "stepdad", "stepson", "stepdaughter",
    "stepmother", "stepfather", "mother-in-law", "father-in-law", "sister-in-law",
    "brother-in-law", "spouse", "twin", "mentor", "therapist",
})

DEMONYMS = frozenset("""
american british english scottish welsh irish canadian australian german french italian spanish
portuguese dutch belgian swiss austrian polish czech slovak hungarian romanian bulgarian greek
turkish russian ukrainian swedish norwegian danish finnish icelandic estonian latvian
lithuanian croatian serbian slovenian bosnian albanian mexican brazilian argentinian argentine
chilean colombian peruvian venezuelan cuban chinese japanese korean vietnamese thai filipino
indonesian malaysian singaporean indian pakistani bangladeshi nepali iranian iraqi syrian
lebanese israeli palestinian egyptian moroccan algerian tunisian nigerian ghanaian kenyan
ethiopian somali south-african ugandan tanzanian jamaican haitian kiwi taiwanese
""".split())

LANGUAGES = frozenset("""
English German French Spanish Italian Portuguese Dutch Swedish Norwegian Danish Finnish Icelandic
Polish Czech Slovak Hungarian Romanian Bulgarian Greek Turkish Russian Ukrainian Croatian Serbian
Slovenian Estonian Latvian Lithuanian Albanian Catalan Basque Galician Irish Welsh Latin Hebrew
Arabic Persian Farsi Hindi Urdu Bengali Punjabi Tamil Chinese Mandarin Cantonese Japanese Korean
Vietnamese Thai Indonesian Malay Tagalog Swahili Esperanto
""".split())

# Capitalised words that follow "I'm" / "my sister" without being names.
NOT_NAMES = frozenset("""
I Im Sorry Fine Good Okay Ok Not So Just Here There Back Home Done Happy Sure Glad Also Still
Currently Now Really Always Never Very Quite Pretty The A An And But Or Is Was Who What When
Where Why How Monday Tuesday Wednesday Thursday Friday Saturday Sunday Christmas Easter
""".split())


def is_job(phrase: str) -> bool:
    """A job phrase ("software engineer", "nurse") rather than a trait ("huge fan")."""
    words = phrase.lower().split()
    if not words or len(words) > 4:
        return False
    head = words[-1]
    if head in NOT_JOBS:
        return False
    return head in JOBS or head.endswith(("ologist", "ician")) or (
        head.endswith("ist") and head not in NOT_JOBS and len(head) > 5)
